"""Where a training step's time goes: the engine's own run, profiled with torch.profiler over a window of steps.

    .venv/bin/python tests/bench/step_profile.py CONFIG.yaml [--skip 3] [--steps 10]

Runs `engine.train.run_train` on CONFIG in this process (its output_dir is replaced by a temporary folder) with a
profiler callback added to the engine's Trainer; steps `--skip` are left out (warm-up), the next `--steps` are
profiled. Each operator's own time (self CPU time, children excluded) goes to one category:

    matmul      aten::mm / addmm / bmm (the model's and LoRA's matmuls; the FLOPs the profiler counts for them
                give their achieved GFLOP/s)
    attention   scaled_dot_product_attention's kernels, forward and backward
    loss        log_softmax / nll_loss and their backward
    optimizer   every operator under the optimizer's step (AdamW's foreach kernels, grad clipping is separate)
    other ops   every other aten operator (norms, SiLU, rotary, dropout, copies, additions)

and what is left of the steps' wall time is Python and framework work between operators (the Trainer's loop,
autograd's bookkeeping, peft's layers, the collator). Prints one table, markdown, for RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm")
LOSS = ("log_softmax", "nll_loss", "cross_entropy")


def category(name: str, under_optimizer: bool) -> str:
    if under_optimizer:
        return "optimizer"
    if name in MATMUL:
        return "matmul"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention"
    if any(part in name for part in LOSS):
        return "loss"
    return "other ops"


def profile(config_path: Path, skip: int, steps: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity
    from transformers import TrainerCallback

    from engine import trainer as engine_trainer
    from engine.config import load_config
    from engine.train import run_train

    # Two windows of `steps` steps: the first for the shares (the profiler's own cost per operator is small), the
    # second with FLOP counting for the matmuls' rate (it records shapes, which slows the small operators).
    shares = torch.profiler.profile(activities=[ProfilerActivity.CPU])
    rates = torch.profiler.profile(activities=[ProfilerActivity.CPU], with_flops=True)
    seconds: dict[str, float] = {}

    class Window(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == skip:
                seconds["shares"] = time.perf_counter()
                shares.start()
            elif state.global_step == skip + steps:
                shares.stop()
                seconds["shares"] = time.perf_counter() - seconds["shares"]
                seconds["rates"] = time.perf_counter()
                rates.start()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == skip + 2 * steps:
                rates.stop()
                seconds["rates"] = time.perf_counter() - seconds["rates"]
                control.should_training_stop = True

    build = engine_trainer.build_trainer

    def build_profiled(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(Window())
        return trainer

    config = load_config(config_path)
    with tempfile.TemporaryDirectory() as out:
        config = config.model_copy(update={"output_dir": out})
        engine_trainer.build_trainer = build_profiled  # engine.train imports it from engine.trainer when it runs

        code = run_train(config)
        if code != 0 or "rates" not in seconds:
            raise SystemExit(f"the run failed or had fewer than {skip + 2 * steps} steps; see its train.log")
    return summarise(shares, rates, seconds["shares"], steps)


def summarise(shares, rates, window_s: float, steps: int) -> dict:
    """Shares of the first window's wall time by category; the matmuls' FLOP/s from the second window."""
    events = shares.events()
    optimizer_ranges = [(e.time_range.start, e.time_range.end) for e in events
                        if e.name.startswith("Optimizer.step#")]
    by_category: dict[str, float] = defaultdict(float)
    other: dict[str, float] = defaultdict(float)
    for e in events:
        if not e.name.startswith("aten::"):
            continue
        inside = any(a <= e.time_range.start <= b for a, b in optimizer_ranges)
        kind = category(e.name, inside)
        by_category[kind] += e.self_cpu_time_total
        if kind == "other ops":
            other[e.name] += e.self_cpu_time_total
    window_us = window_s * 1e6
    by_category["Python and framework"] = max(0.0, window_us - sum(by_category.values()))
    matmuls = [e for e in rates.events() if e.name in MATMUL]
    matmul_us = sum(e.self_cpu_time_total for e in matmuls)
    flops = sum(e.flops or 0 for e in matmuls)
    return {"steps": steps, "step_ms": window_s * 1e3 / steps,
            "shares": {k: v / window_us for k, v in by_category.items()},
            "matmul_gflops": flops / (matmul_us * 1e3) if matmul_us else 0.0,
            "largest_other": {k: v / window_us for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:6]}}


def render(result: dict, label: str) -> str:
    order = ["matmul", "attention", "loss", "other ops", "optimizer", "Python and framework"]
    lines = [f"Step profile, {label}: {result['steps']} steps, {result['step_ms']:.0f} ms per step; matmuls ran at "
             f"{result['matmul_gflops']:.1f} GFLOP/s (the profiler's FLOP count over their own time).", "",
             "| where | share of step time |", "|---|---|"]
    lines += [f"| {k} | {100 * result['shares'].get(k, 0.0):.1f}% |" for k in order]
    lines += ["", "Largest of the other ops: " + ", ".join(f"{name} {100 * share:.1f}%"
                                                     for name, share in result["largest_other"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", type=Path)
    p.add_argument("--skip", type=int, default=3, help="warm-up steps left out")
    p.add_argument("--steps", type=int, default=10, help="steps profiled")
    p.add_argument("--label", default=None)
    args = p.parse_args(argv)
    result = profile(args.config, args.skip, args.steps)
    print(render(result, args.label or args.config.name))


if __name__ == "__main__":
    main()
