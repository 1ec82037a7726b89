"""Build the bundled demo model, assets/models/workbench-demo-5m/, from scratch on one CPU core.

    .venv/bin/python assets/models/build_demo_model.py            # the shipped settings (~30 min)
    .venv/bin/python assets/models/build_demo_model.py --steps 50 --out /tmp/demo-smoke   # smoke test

What it does, in order:
  1. corpus: the World English Bible (public domain; see assets/models/corpus/README.md), taken
     from Debian's `sword-text-web` package (`apt-get download`, no root needed, cached in
     --cache), decoded from the SWORD zText format, markup stripped, one paragraph a line.
     About 1% of the paragraphs (chosen by a hash of their text) are held out; that slice is
     committed as assets/models/corpus/web-heldout.txt so perplexity can be rechecked.
  2. chat slice: simple generated instructions (assets/datasets/make_datasets.py, another seed
     than the shipped files) rendered with the ChatML template, about 15% of the tokens, so the
     base model knows the turn format. The identity dataset is never used.
  3. tokenizer: byte-level BPE (tokenizers), 4096 entries, special tokens <s> </s> <unk> <pad>
     <|im_start|> <|im_end|>, ChatML chat template; eos is <|im_end|>.
  4. model: LlamaForCausalLM, 256 wide, 6 layers, tied embeddings, ~5.5M parameters, fp32
     (22 MB of safetensors).
  5. pre-training: AdamW, warm-up then cosine decay, fixed number of steps, torch.set_num_threads(1).
  6. metrics.json: held-out perplexity of the trained model and of the same architecture
     untrained (same seed), sample generations, command and wall time.
"""

import argparse
import hashlib
import json
import math
import random
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "assets" / "datasets"))
import make_datasets  # noqa: E402

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<s>", "</s>", "<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
DEB = "sword-text-web"
MODULE = "usr/share/sword/modules/texts/ztext/engWEB2015eb"


# ------------------------------------------------------------------------------ corpus

def fetch_corpus(cache: Path) -> list[str]:
    """Paragraphs of the World English Bible, from Debian's sword-text-web package."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{DEB}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", DEB], cwd=cache, check=True)
        debs = sorted(cache.glob(f"{DEB}_*.deb"))
    root = cache / "x"
    if not (root / MODULE).exists():
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    paras = []
    for testament in ("ot", "nt"):
        d = root / MODULE
        index = (d / f"{testament}.bzs").read_bytes()
        blob = (d / f"{testament}.bzz").read_bytes()
        for i in range(len(index) // 12):
            off, size, _ = struct.unpack("<III", index[i * 12:i * 12 + 12])
            paras += osis_paragraphs(zlib.decompress(blob[off:off + size]).decode("utf-8"))
    return paras


def osis_paragraphs(x: str) -> list[str]:
    x = re.sub(r"<note\b.*?</note>", "", x, flags=re.S)
    x = re.sub(r"<title\b.*?</title>", "\n\n", x, flags=re.S)
    # paragraph ends: end of a paragraph div, of a poetry line group, of a chapter
    x = re.sub(r'<div eID="[^"]*" type="x-p"/>|</lg>|<lg eID[^>]*/>|<chapter eID[^>]*/>', "\n\n", x)
    x = re.sub(r"<l\b[^>]*/>|</l>|<lb\b[^>]*/>", " ", x)
    x = re.sub(r"<[^>]+>", "", x)
    x = x.replace("\u00a0", " ")
    out = []
    for p in re.split(r"\n\s*\n", x):
        p = re.sub(r"\s+", " ", p).strip()
        if len(p) >= 40 and not p.startswith("$Rev"):
            out.append(p)
    return out


def is_heldout(paragraph: str) -> bool:
    return hashlib.sha1(paragraph.encode()).digest()[0] < 3  # ~1.2%


# ------------------------------------------------------------------------------ tokenizer

def chatml(q: str, a: str) -> str:
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"


def train_tokenizer(texts, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>", unk_token="<unk>",
        pad_token="<pad>", additional_special_tokens=["<|im_start|>", "</s>"],
        model_max_length=512, clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


# ------------------------------------------------------------------------------ model

def make_model(tok, args, seed):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=args.ffn,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.heads, max_position_embeddings=512, rope_theta=10000.0,
        tie_word_embeddings=True, bos_token_id=tok.convert_tokens_to_ids("<s>"),
        eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("</s>")],
        pad_token_id=tok.pad_token_id, torch_dtype="float32")
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def pack(ids_list, seq):
    flat = [t for ids in ids_list for t in ids]
    n = len(flat) // seq
    return torch.tensor(flat[:n * seq], dtype=torch.long).view(n, seq)


@torch.no_grad()
def perplexity(model, blocks, batch=16):
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(blocks), batch):
        x = blocks[i:i + batch]
        out = model(input_ids=x, labels=x)
        k = x.numel() - x.shape[0]
        tot += out.loss.item() * k
        n += k
    model.train()
    return math.exp(tot / n)


@torch.no_grad()
def samples(model, tok):
    model.eval()
    out = {}
    prompts = ["And God said", "The king of Israel", "Jesus said to them,", "In the morning"]
    for p in prompts:
        ids = tok(p, return_tensors="pt").input_ids
        g = model.generate(ids, max_new_tokens=40, do_sample=False, repetition_penalty=1.2)
        out["greedy: " + p] = tok.decode(g[0], skip_special_tokens=True)
        torch.manual_seed(0)
        g = model.generate(ids, max_new_tokens=40, do_sample=True, temperature=0.8, top_p=0.9)
        out["sampled: " + p] = tok.decode(g[0], skip_special_tokens=True)
    for q in ["What is the capital of France?", "What is 7 + 5?", "Who are you?", "你是谁？",
              "Name three colors."]:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        g = model.generate(ids, max_new_tokens=30, do_sample=False)
        out["chat: " + q] = tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True)
    model.train()
    return out


# ------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "workbench-demo-5m"), help="output model folder")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "peft-workbench" / "corpus"))
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--ffn", type=int, default=640)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256, help="training sequence length")
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--steps", type=int, default=420)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--chat-frac", type=float, default=0.15, help="share of chat-formatted tokens")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    out = Path(args.out)

    paras = fetch_corpus(Path(args.cache))
    train_p = [p for p in paras if not is_heldout(p)]
    held_p = [p for p in paras if is_heldout(p)]
    corpus_dir = HERE / "corpus"
    corpus_dir.mkdir(exist_ok=True)
    (corpus_dir / "web-heldout.txt").write_text("\n\n".join(held_p) + "\n", encoding="utf-8")
    print(f"corpus: {len(train_p)} train paragraphs, {len(held_p)} held out, "
          f"{sum(map(len, train_p)) / 1e6:.1f} MB train text", flush=True)

    pairs = make_datasets.generate_instructions(20000, seed=1)
    chat = [chatml(q, a) for q, a in pairs]

    tok = train_tokenizer(train_p + chat, args.vocab)
    bos, eos = tok.convert_tokens_to_ids("<s>"), tok.convert_tokens_to_ids("</s>")
    # documents: runs of consecutive paragraphs, a few hundred tokens each
    r = random.Random(args.seed)
    docs, cur = [], []
    for p in train_p:
        cur.append(p)
        if sum(map(len, cur)) > 1200:
            docs.append("\n\n".join(cur))
            cur = []
    text_ids = [[bos] + tok(d).input_ids + [eos] for d in docs]
    chat_ids = [tok(c).input_ids for c in chat]
    n_text = sum(map(len, text_ids))
    want_chat = int(n_text * args.chat_frac / (1 - args.chat_frac))
    r.shuffle(chat_ids)
    chosen, n = [], 0
    while n < want_chat:
        c = chat_ids[len(chosen) % len(chat_ids)]
        chosen.append(c)
        n += len(c)
    mixed = text_ids + [[bos] + c + [eos] for c in chosen]
    r.shuffle(mixed)
    blocks = pack(mixed, args.seq)
    held_blocks = pack([[bos] + tok(p).input_ids + [eos] for p in held_p], args.seq)
    print(f"tokens: {n_text} text + {n} chat = {blocks.numel()} in {len(blocks)} blocks; "
          f"held-out {held_blocks.numel()} tokens; tokens/step {args.batch * args.seq}; "
          f"epochs {args.steps * args.batch / len(blocks):.2f}", flush=True)

    model = make_model(tok, args, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    ppl0 = perplexity(model, held_blocks)
    print(f"params {n_params / 1e6:.2f}M; untrained held-out perplexity {ppl0:.1f}", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(blocks), generator=g)
    t_train = time.time()
    model.train()
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * \
            (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = [order[(step * args.batch + j) % len(order)].item() for j in range(args.batch)]
        x = blocks[idx]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 25 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            print(f"step {step} loss {loss.item():.3f} lr {lr:.2e} {el:.0f}s "
                  f"({(step + 1) * args.batch * args.seq / el:.0f} tok/s)", flush=True)
    train_s = time.time() - t_train

    ppl = perplexity(model, held_blocks)
    print(f"trained held-out perplexity {ppl:.2f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = model.config.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    gens = samples(model, tok)
    for k, v in gens.items():
        print(f"{k!r} -> {v!r}", flush=True)
    metrics = {
        "model": out.name,
        "architecture": "LlamaForCausalLM",
        "parameters": n_params,
        "config": {k: getattr(args, k) for k in ("vocab", "hidden", "ffn", "layers", "heads", "seq",
                                                  "batch", "steps", "lr", "warmup", "chat_frac", "seed",
                                                  "threads")},
        "corpus": "World English Bible (public domain), Debian package sword-text-web; "
                  "held-out slice: assets/models/corpus/web-heldout.txt",
        "train_tokens_seen": args.steps * args.batch * args.seq,
        "heldout_tokens": held_blocks.numel(),
        "heldout_perplexity": {"trained": round(ppl, 2), "untrained_same_architecture": round(ppl0, 1)},
        "samples": gens,
        "command": "python " + " ".join([str(Path(sys.argv[0]).as_posix())] + sys.argv[1:]),
        "pretraining_seconds": round(train_s),
        "total_seconds": round(time.time() - t0),
        "torch_threads": args.threads,
        "torch": torch.__version__,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1) + "\n",
                                      encoding="utf-8")
    print(f"done in {time.time() - t0:.0f}s -> {out}", flush=True)


if __name__ == "__main__":
    main()
