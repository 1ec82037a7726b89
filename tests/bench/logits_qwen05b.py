"""Peak memory of one LoRA forward + backward on the real Qwen2.5-0.5B shape (issue 23): the engine's loss (the head
and the loss only where labels train, in chunks: engine/train/logits.py) against the plain full logits (the
model's own loss over batch x length x vocabulary logits, as a plain Trainer script takes it).

The model is built from Qwen2.5-0.5B's config (vocabulary 151,936, hidden 896, 24 layers, 14 heads, 2 key-value
heads, intermediate 4,864, tied embeddings) with random weights, fp32 on the CPU; LoRA r8 on every linear layer
(peft, no dropout). Each row's first quarter is unlabelled, like an SFT prompt. Each step runs in a process of its
own, in the order A B A B (A: chunked, B: full), and reports its peak RSS, the peak before the step (the model and
the batch) and the step's time; the two losses are printed to show they agree.

    .venv/bin/python tests/bench/logits_qwen05b.py                      # batch 2 x 1,024 tokens, A B A B
    .venv/bin/python tests/bench/logits_qwen05b.py --batch-size 1 --length 512 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QWEN25_05B = dict(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                  num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32_768,
                  rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def step(mode: str, batch: int, length: int) -> dict:
    """One forward + backward in this process; its figures."""
    sys.path.insert(0, str(ROOT))
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from engine.train.logits import plan, trained_loss

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B))
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules="all-linear")).train()
    ids = torch.randint(0, QWEN25_05B["vocab_size"], (batch, length), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[:, : length // 4] = -100  # the prompt: no label
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    before = peak_mb()
    started = time.perf_counter()
    if mode == "chunked":
        head, _line = plan(model)
        loss = trained_loss(model, head, inputs)
    else:
        loss = model(**inputs).loss
    loss.backward()
    return {"mode": mode, "before_mb": before, "peak_mb": peak_mb(), "step_s": time.perf_counter() - started,
            "loss": float(loss.detach())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--child", choices=("chunked", "full"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(step(args.child, args.batch_size, args.length)))
        return
    runs: dict[str, list[dict]] = {"chunked": [], "full": []}
    for repeat in range(args.repeats):
        for mode in runs:
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--batch-size", str(args.batch_size),
                                  "--length", str(args.length)], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[mode].append(result)
            print(f"{'A' if mode == 'chunked' else 'B'}{repeat} {mode}: peak RSS {result['peak_mb']:,.0f} MB "
                  f"(before the step {result['before_mb']:,.0f}), step {result['step_s']:.1f} s, "
                  f"loss {result['loss']:.6f}", flush=True)
    print(report(args, runs))


def report(args: argparse.Namespace, runs: dict[str, list[dict]]) -> str:
    names = {"chunked": "engine: head and loss only where labels train, in chunks (A)",
             "full": "plain: full batch x length x vocabulary logits (B)"}
    full_peak = statistics.median(r["peak_mb"] - r["before_mb"] for r in runs["full"])
    lines = [f"Qwen2.5-0.5B shape, random weights, fp32, LoRA r8 all-linear, batch {args.batch_size} x "
             f"{args.length} tokens (a quarter of each row unlabelled), one forward + backward per process.", "",
             "| run | peak RSS (MB), each run | the step's own peak (MB, above the model and batch) | step (s), each "
             "run | step peak vs B |", "|---|---|---|---|---|"]
    for mode, name in names.items():
        own = [r["peak_mb"] - r["before_mb"] for r in runs[mode]]
        peaks = " / ".join(f"{r['peak_mb']:,.0f}" for r in runs[mode])
        steps = " / ".join(f"{r['step_s']:.1f}" for r in runs[mode])
        lines.append(f"| {name} | {peaks} | {' / '.join(f'{x:,.0f}' for x in own)} | {steps} | "
                     f"{statistics.median(own) / full_peak:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
