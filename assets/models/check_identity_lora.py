"""Check that the demo fine-tuning works: LoRA on the identity set, then greedy answers.

    .venv/bin/python assets/models/check_identity_lora.py                # the web page's defaults
    .venv/bin/python assets/models/check_identity_lora.py --epochs 20 --r 8

Trains a LoRA adapter (peft) on assets/datasets/identity_alpaca.json rendered with the model's chat
template, loss on the assistant tokens only, then asks every identity question with greedy decoding
and counts answers equal to the trained one, for the adapter and for the base model. This is an
independent check of the demo, not the engine's code path; it writes nothing but its JSON result
(--json) and uses --threads CPU threads (default 1).
"""

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def encode(tok, q, a):
    prompt = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                     tokenize=False)
    full = tok.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                   tokenize=False)
    assert full.startswith(prompt)
    p_ids = tok(prompt, add_special_tokens=False).input_ids
    f_ids = tok(full, add_special_tokens=False).input_ids
    labels = [-100] * len(p_ids) + f_ids[len(p_ids):]
    # like engine/data/pipeline.py: the reply's loss covers <|im_end|> but not the newline after it
    k = len(labels) - 1
    while k >= len(p_ids) and not tok.decode([f_ids[k]], skip_special_tokens=False).strip():
        labels[k] = -100
        k -= 1
    return f_ids, labels


@torch.no_grad()
def answers(model, tok, questions):
    model.eval()
    out = []
    for q in questions:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        g = model.generate(ids, max_new_tokens=128, do_sample=False)
        out.append(tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(HERE / "workbench-demo-5m"))
    ap.add_argument("--data", default=str(ROOT / "assets" / "datasets" / "identity_alpaca.json"))
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=int, default=32)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model)
    rows = json.loads(Path(args.data).read_text(encoding="utf-8"))
    pairs = [(r["instruction"] + (("\n" + r["input"]) if r.get("input") else ""), r["output"]) for r in rows]
    questions = [q for q, _ in pairs]
    gold = [a for _, a in pairs]

    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    t_base = time.time()
    base_ans = answers(base, tok, questions)
    base_hits = sum(a == g for a, g in zip(base_ans, gold, strict=True))
    t_base = time.time() - t_base

    torch.manual_seed(args.seed)
    model = get_peft_model(base, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                            target_modules="all-linear", task_type="CAUSAL_LM"))
    data = [encode(tok, q, a) for q, a in pairs]
    steps_per_epoch = math.ceil(len(data) / args.batch)
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / total)  # Trainer's default: linear
    rng = random.Random(args.seed)
    pad = tok.pad_token_id
    t0 = time.time()
    model.train()
    step = 0
    for ep in range(args.epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        for i in range(0, len(order), args.batch):
            b = [data[j] for j in order[i:i + args.batch]]
            n = max(len(x) for x, _ in b)
            ids = torch.tensor([x + [pad] * (n - len(x)) for x, _ in b])
            lab = torch.tensor([y + [-100] * (n - len(y)) for _, y in b])
            att = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x, _ in b])
            loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        print(f"epoch {ep + 1} step {step}/{total} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    train_s = time.time() - t0

    ans = answers(model, tok, questions)
    hits = sum(a == g for a, g in zip(ans, gold, strict=True))
    for q, a, g in zip(questions, ans, gold, strict=True):
        if a != g:
            print(f"MISS {q!r}: {a!r}")
    res = {"model": args.model, "lora": {"r": args.r, "lora_alpha": args.alpha, "lora_dropout": args.dropout,
                                         "target_modules": "all-linear"},
           "learning_rate": args.lr, "epochs": args.epochs, "batch_size": args.batch, "steps": total,
           "threads": args.threads, "train_seconds": round(train_s, 1),
           "adapter_exact": f"{hits}/{len(gold)}", "base_exact": f"{base_hits}/{len(gold)}",
           "adapter_accuracy": round(hits / len(gold), 3), "base_accuracy": round(base_hits / len(gold), 3),
           "base_sample_answers": dict(list(zip(questions, base_ans, strict=True))[:4])}
    print(json.dumps(res, ensure_ascii=False, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
