"""How long a run takes, before Start: tokens to train / a throughput measured on this machine (issue 26 item 3).

The throughput is measured, not claimed: the finished runs in the workspace (their metrics.json: tokens/s,
method, parameter count) give this machine's training FLOP/s, which divides the new run's FLOPs per token
(`flops_per_token`: 2 per matmul parameter forward, 2 more for the input gradients, 2 more for the weight
gradients of what trains, and one more forward where gradient checkpointing recomputes it). The newest run is
the figure (the machine's load and device as now); where there is none, the page says the first steps will tell.
Once training runs, the engine's ETA (engine/train/trainer.py) is the measured seconds per step so far times the
steps left: the time estimate refined after the first steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.model import shapes

FULL = ("full", "freeze")  # methods whose weight gradients are the model's


def matmul_params(model_config: dict[str, Any]) -> int | None:
    """Parameters that take part in a matmul per token: all but the input embedding (the head always does)."""
    total = shapes.estimate_total(model_config)
    if total is None:
        return None
    embedding = int(model_config.get("vocab_size", 0)) * int(model_config.get("hidden_size", 0))
    tied = bool(model_config.get("tie_word_embeddings", False))
    return total - (0 if tied else embedding)


def flops_per_token(method: str, params: int, checkpointing: bool = False) -> int:
    forward = 2 * params
    weights = 2 * params if method in FULL else 0  # adapters' weight gradients are a few per cent: left out
    return forward * (3 if checkpointing else 2) + weights


def tokens_to_train(config: RunConfig, rows: int | None = None) -> int | None:
    """Tokens the run trains at most (every row at the cutoff): max_steps' batches, else `epochs` over `rows`."""
    t = config.train
    if t.max_steps:
        return t.max_steps * t.batch_size * t.gradient_accumulation_steps * t.cutoff_len
    if rows is None:
        return None
    return int(t.epochs * rows * t.cutoff_len)


def measured_rate(runs_dir: Path) -> tuple[float, str] | None:
    """(training FLOP/s, the run it was measured on) from the newest finished run in `runs_dir` whose metrics.json
    gives tokens/s; None where there is none."""
    found = []
    for metrics in runs_dir.glob("*/metrics.json"):
        try:
            data = json.loads(metrics.read_text(encoding="utf-8"))
            rate, total, method = float(data["tokens_per_s"]), int(data["total_params"]), str(data["method"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a run without the figures (failed, or from before they were written) tells nothing
        if rate > 0:
            found.append((metrics.stat().st_mtime, rate * flops_per_token(method, total), metrics.parent.name))
    if not found:
        return None
    _, flops, name = max(found)
    return flops, name


def seconds(config: RunConfig, model_config: dict[str, Any], flops_per_s: float, rows: int | None = None
            ) -> tuple[float, float] | None:
    """(tokens/s, seconds) of the run at `flops_per_s`; None where the tokens or the shapes are unknown."""
    params = matmul_params(model_config)
    tokens = tokens_to_train(config, rows)
    if params is None or tokens is None or flops_per_s <= 0:
        return None
    rate = flops_per_s / flops_per_token(config.method.name, params, config.train.gradient_checkpointing)
    return rate, tokens / rate


def clock(seconds: float) -> str:
    """3 h 05 min, 12 min, 40 s."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
