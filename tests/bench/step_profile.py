"""Where a training step's time goes: the engine's own run, profiled with torch.profiler over a window of steps.

    .venv/bin/python tests/bench/step_profile.py CONFIG.yaml [--skip 3] [--steps 10]

Runs `engine.train.recipe.run_train` on CONFIG in this process (its output_dir is replaced by a temporary folder) with a
profiler callback added to the engine's Trainer; steps `--skip` are left out (warm-up), the next `--steps` are
profiled. Each operator's own time (self CPU time, children excluded) goes to one category:

    matmul      aten::mm / addmm / bmm (the model's and LoRA's matmuls)
    attention   scaled_dot_product_attention's kernels, forward and backward
    loss        log_softmax / nll_loss and their backward
    optimizer   every operator under the optimizer's step (AdamW's foreach kernels, grad clipping is separate)
    other ops   every other aten operator (norms, SiLU, rotary, dropout, copies, additions)

and what is left of the steps' wall time is Python and framework work between operators (the Trainer's loop,
autograd's bookkeeping, peft's layers, the collator). The rates count 4N FLOPs per non-padding token (N: the base
model's nn.Linear weights), over the steps' wall time (the numerator of the benchmark's MFU) and over the matmuls'
own time. The profiler is started without shapes or FLOP counting, which would slow the small operators. Prints
markdown for RESULTS.md.
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

    from engine.config import load_config
    from engine.train import trainer as engine_trainer
    from engine.train.recipe import run_train

    profiler = torch.profiler.profile(activities=[ProfilerActivity.CPU])
    window: dict[str, float] = {}
    model: dict[str, object] = {}

    class Window(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == skip:
                window["tokens"] = -state.num_input_tokens_seen
                window["seconds"] = -time.perf_counter()
                profiler.start()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == skip + steps:
                profiler.stop()
                window["seconds"] += time.perf_counter()
                window["tokens"] += state.num_input_tokens_seen
                control.should_training_stop = True

    build = engine_trainer.build_trainer

    def build_profiled(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(Window())
        model["model"] = trainer.model
        return trainer

    config = load_config(config_path)
    with tempfile.TemporaryDirectory() as out:
        config = config.model_copy(update={"output_dir": out})
        # engine.train.recipe imports it from engine.train.trainer when it runs
        engine_trainer.build_trainer = build_profiled
        code = run_train(config)
        if code != 0 or "tokens" not in window or window["seconds"] <= 0:
            raise SystemExit(f"the run failed or had fewer than {skip + steps} steps")
    return summarise(profiler, window, steps, base_matmul_weights(model["model"]))


def base_matmul_weights(model) -> int:
    """N: the weights of the base model's nn.Linear layers (LoRA's own A and B left out), lm_head included."""
    import torch

    return sum(m.weight.numel() for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "lora_" not in name)


def summarise(profiler, window: dict[str, float], steps: int, n: int) -> dict:
    """Shares of the window's wall time by category, and the rates of 4N FLOPs per non-padding token."""
    events = profiler.events()
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
    window_us = window["seconds"] * 1e6
    by_category["Python and framework"] = max(0.0, window_us - sum(by_category.values()))
    flops = 4 * n * window["tokens"]
    return {"steps": steps, "step_ms": window["seconds"] * 1e3 / steps, "tokens": window["tokens"],
            "shares": {k: v / window_us for k, v in by_category.items()},
            "achieved_gflops": flops / window["seconds"] / 1e9,
            "matmul_gflops": flops / (by_category["matmul"] / 1e6) / 1e9 if by_category["matmul"] else 0.0,
            "largest_other": {k: v / window_us for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:6]}}


def render(result: dict, label: str) -> str:
    order = ["matmul", "attention", "loss", "other ops", "optimizer", "Python and framework"]
    lines = [f"Step profile, {label}: {result['steps']} steps, {result['step_ms']:.0f} ms per step, "
             f"{result['tokens'] / result['steps']:.0f} non-padding tokens per step. 4N FLOPs per non-padding token: "
             f"{result['achieved_gflops']:.0f} GFLOP/s over the steps' wall time, {result['matmul_gflops']:.0f} "
             "GFLOP/s over the matmuls' own time (a lower bound of their rate: LoRA's matmuls and padding are not "
             "counted).", "", "| where | share of step time |", "|---|---|"]
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
