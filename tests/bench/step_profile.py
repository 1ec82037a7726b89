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
    from torch.profiler import ProfilerActivity, schedule
    from transformers import TrainerCallback

    from engine import trainer as engine_trainer
    from engine.config import load_config
    from engine.train import run_train

    prof = torch.profiler.profile(activities=[ProfilerActivity.CPU], with_flops=True,
                                  schedule=schedule(wait=skip, warmup=0, active=steps, repeat=1))

    class Step(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            prof.start()

        def on_step_end(self, args, state, control, **kwargs):
            prof.step()
            if state.global_step >= skip + steps:
                control.should_training_stop = True

    build = engine_trainer.build_trainer

    def build_profiled(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(Step())
        return trainer

    config = load_config(config_path)
    with tempfile.TemporaryDirectory() as out:
        config = config.model_copy(update={"output_dir": out})
        engine_trainer.build_trainer = build_profiled  # engine.train imports it from engine.trainer when it runs

        started = time.perf_counter()
        code = run_train(config)
        wall = time.perf_counter() - started
        prof.stop()
        if code != 0:
            raise SystemExit(f"the run failed; see {out}/train.log")
    return summarise(prof, wall)


def summarise(prof, wall: float) -> dict:
    events = prof.events()
    step_ranges = [e for e in events if e.name.startswith("ProfilerStep")]
    step_us = sum(e.cpu_time_total for e in step_ranges)
    optimizer_ranges = [(e.time_range.start, e.time_range.end) for e in events
                        if e.name.startswith("Optimizer.step#")]
    by_category: dict[str, float] = defaultdict(float)
    flops = matmul_us = 0.0
    for e in events:
        if not e.name.startswith("aten::"):
            continue
        start = e.time_range.start
        inside = any(a <= start <= b for a, b in optimizer_ranges)
        kind = category(e.name, inside)
        by_category[kind] += e.self_cpu_time_total
        if kind == "matmul":
            flops += e.flops or 0
            matmul_us += e.self_cpu_time_total
    other: dict[str, float] = defaultdict(float)
    for e in events:
        if e.name.startswith("aten::") and category(e.name, False) == "other ops":
            other[e.name] += e.self_cpu_time_total
    ops_us = sum(by_category.values())
    by_category["Python and framework"] = max(0.0, step_us - ops_us)
    return {"steps": len(step_ranges), "step_ms": step_us / 1e3 / max(len(step_ranges), 1),
            "shares": {k: v / step_us for k, v in by_category.items()},
            "matmul_gflops": flops / (matmul_us * 1e3) if matmul_us else 0.0, "wall_s": wall,
            "largest_other": {k: v / step_us for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:6]}}


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
