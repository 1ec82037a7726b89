"""Per-example attention inside a packed row on the CPU, measured against the masked full square that SDPA runs
for packed rows (issue 14, item 2): forward + backward of one attention layer, fp32, this machine's threads.

    .venv/bin/python tests/bench/attention_cpu.py [--heads 8] [--head-dim 64]

For each packed row (a list of example lengths) it times:
    masked     one scaled_dot_product_attention over the whole row with a block-diagonal causal mask
    per-example one causal scaled_dot_product_attention call per example (what a variable-length kernel computes)
and prints the best of 20 repeats of each, in ms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench  # noqa: E402

ROWS = {  # packed rows of 256 tokens as the benchmark's profiles make them (first-fit of a batch of 4 or more)
    "short profile: 6 rows of ~43": [43, 40, 45, 38, 47, 43],
    "realistic: 2 rows of 128": [128, 128],
    "realistic: 96 + 80 + 80": [96, 80, 80],
    "one row of 256 (nothing packed)": [256],
}


def block_causal_mask(lengths: list[int]) -> torch.Tensor:
    total = sum(lengths)
    mask = torch.zeros(total, total, dtype=torch.bool)
    start = 0
    for n in lengths:
        mask[start:start + n, start:start + n] = torch.ones(n, n, dtype=torch.bool).tril()
        start += n
    return mask


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.heads} heads x {args.head_dim}")
    print("| packed row | masked full square (ms) | per example (ms) | per example / masked |")
    print("|---|---|---|---|")
    for name, lengths in ROWS.items():
        total = sum(lengths)
        q, k, v = (torch.randn(1, args.heads, total, args.head_dim, requires_grad=True) for _ in range(3))
        mask = block_causal_mask(lengths)

        def masked(q=q, k=k, v=v, mask=mask):  # bound now: the loop moves on to the next row
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()

        def per_example(q=q, k=k, v=v, lengths=lengths):
            outs, start = [], 0
            for n in lengths:
                part = slice(start, start + n)
                outs.append(F.scaled_dot_product_attention(q[:, :, part], k[:, :, part], v[:, :, part],
                                                           is_causal=True))
                start += n
            torch.cat(outs, dim=2).sum().backward()

        masked(), per_example()  # warm-up
        a = 1e3 * run_bench.best_time(args.repeats, masked)
        b = 1e3 * run_bench.best_time(args.repeats, per_example)
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
