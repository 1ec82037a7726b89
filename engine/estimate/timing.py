"""How long a run takes, before Start: tokens to train / a throughput measured on this machine (issue 26 item 3).

The throughput is measured, not claimed: the finished runs in the workspace (their metrics.json: tokens/s,
method, parameter count) give this machine's training FLOP/s, which divides the new run's FLOPs per token
(`flops_per_token`: 2 per matmul parameter forward, 2 more for the input gradients, 2 more for the weight
gradients of what trains, and one more forward where gradient checkpointing recomputes it).

A preference stage trains on more than its rows say. The tokens a run counts (tokens_per_s, engine/train) are the
non-padding tokens of what its policy trains on: both sequences of a pair (prompt + chosen, prompt + rejected) for
dpo, orpo and simpo, each up to cutoff_len, so `tokens_to_train` counts two a pair; one prompt + completion a row
for kto. On top of the policy's forward and backward: dpo's reference forward (LoRA's is the base with the adapter
disabled, full's a frozen copy: the same FLOPs; precompute_ref_log_probs is off); kto's policy forward of its
mismatched KL sequence and the reference's forward of both (its KL sequence is about as long and is not counted);
orpo and simpo have no reference. So a rate measured on a run of one stage converts to another through these FLOPs
per token (the machine's FLOP/s is the common unit). The run measured by: the newest finished run of the same stage
and method, else the newest run; either only among runs of MIN_STEPS steps or more where there is one, because
tokens_per_s is the attempt's tokens over its seconds from the first step on (engine/train/throughput.py): the first
step's start-up (kernels, caches, the first batches) is in it, and over a handful of steps it is most of the figure;
where metrics.json has steady_tokens_per_s (the rate after the first step), that is the figure.
Where there is no run, the page says the first steps will tell.
Once training runs, the engine's ETA (engine/train/trainer.py) is the measured seconds per step so far times the
steps left: the time estimate refined after the first steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from engine.config import RunConfig
from engine.model import shapes

FULL = ("full", "freeze")  # methods whose weight gradients are the model's
PAIRED = ("dpo", "orpo", "simpo")  # stages that train both sequences of a pair: two sequences a row
# Forwards without gradient per counted token beyond the policy's: dpo the reference's; kto the policy's on its KL
# sequence, and the reference's on the completion and on the KL sequence. orpo, simpo (and sft) none.
EXTRA_FORWARDS = {"dpo": 1, "kto": 3}
MIN_STEPS = 10  # fewer steps: the rate is mostly the first step's start-up


def matmul_params(model_config: dict[str, Any]) -> int | None:
    """Parameters that take part in a matmul per token: all but the input embedding (the head always does)."""
    total = shapes.estimate_total(model_config)
    if total is None:
        return None
    embedding = int(model_config.get("vocab_size", 0)) * int(model_config.get("hidden_size", 0))
    tied = bool(model_config.get("tie_word_embeddings", False))
    return total - (0 if tied else embedding)


def flops_per_token(method: str, params: int, checkpointing: bool = False, stage: str = "sft") -> int:
    """Training FLOPs per counted token: the policy's forward and backward, and `stage`'s forwards without gradient
    (no checkpointing there: TRL turns it off for the reference)."""
    forward = 2 * params
    weights = 2 * params if method in FULL else 0  # adapters' weight gradients are a few per cent: left out
    return forward * (3 if checkpointing else 2) + weights + forward * EXTRA_FORWARDS.get(stage, 0)


def tokens_to_train(config: RunConfig, rows: int | None = None) -> int | None:
    """Tokens the run trains at most (every sequence at the cutoff, two a row for a pair): max_steps' batches, else
    `epochs` over `rows`."""
    t = config.train
    per_row = t.cutoff_len * (2 if t.stage in PAIRED else 1)
    if t.max_steps:
        return t.max_steps * t.batch_size * t.gradient_accumulation_steps * per_row
    if rows is None:
        return None
    return int(t.epochs * rows * per_row)


def measured_rate(runs_dir: Path, stage: str = "sft", method: str | None = None) -> tuple[float, str] | None:
    """(training FLOP/s, the run it was measured on) from the finished runs in `runs_dir` whose metrics.json gives
    tokens/s: among those of MIN_STEPS steps or more where there is one, the newest of `stage` and `method`, else the
    newest; None where there is none. A run from before stages were written is an SFT run; one that recomputed its
    activations (gradient checkpointing) did a third forward a token."""
    found = []
    for metrics in runs_dir.glob("*/metrics.json"):
        try:
            data = json.loads(metrics.read_text(encoding="utf-8"))
            rate = float(data.get("steady_tokens_per_s") or data["tokens_per_s"])  # start-up left out: preferred
            total, used = int(data["total_params"]), str(data["method"])
            trained, steps = str(data.get("stage") or "sft"), data.get("steps")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # a run without the figures (failed, or from before they were written) tells nothing
        if rate > 0:
            long_enough = not isinstance(steps, int) or steps >= MIN_STEPS  # unknown: taken as enough
            same = trained == stage and used == method
            found.append(((long_enough, same, metrics.stat().st_mtime), rate, used, total, trained, metrics.parent))
    if not found:
        return None
    # the chosen run's config.yaml only: this runs on every change of the form, in the web process
    _, rate, used, total, trained, run = max(found, key=lambda entry: entry[0])
    return rate * flops_per_token(used, total, checkpointed(run), trained), run.name


def checkpointed(run: Path) -> bool:
    """Whether the run recomputed its activations (its config.yaml's train.gradient_checkpointing); False where the
    file does not say."""
    try:
        train = (yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}).get("train") or {}
        return bool(train.get("gradient_checkpointing", False))
    except (OSError, yaml.YAMLError, AttributeError):
        return False


def rate_at(config: RunConfig, params: int, flops_per_s: float) -> float:
    """Counted tokens/s of the run (its stage's tokens, engine/train) at `flops_per_s`."""
    t = config.train
    return flops_per_s / flops_per_token(config.method.name, params, t.gradient_checkpointing, t.stage)


def seconds(config: RunConfig, model_config: dict[str, Any], flops_per_s: float, rows: int | None = None
            ) -> tuple[float, float] | None:
    """(tokens/s, seconds) of the run at `flops_per_s`; None where the tokens or the shapes are unknown."""
    params = matmul_params(model_config)
    tokens = tokens_to_train(config, rows)
    if params is None or tokens is None or flops_per_s <= 0:
        return None
    rate = rate_at(config, params, flops_per_s)
    return rate, tokens / rate


def clock(seconds: float) -> str:
    """3 h 05 min, 12 min, 40 s."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
