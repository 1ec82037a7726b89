"""Before the first step: will one training step fit in memory? A lower bound, not a forecast.

The bound counts only what a step cannot avoid: the weights, the gradients and Adam states of what trains, the
logits with their fp32 loss copy, a few activations per layer, and the attention mask (a padded batch: one square
per row; a packed batch, one square over all its tokens). The logits are those of one chunk of positions where
the loss is taken over trained positions in chunks (engine/train/logits.py), else those of the whole largest
batch (the preference stage, and model families that keep the full computation). A configuration whose bound
exceeds the memory the machine has cannot train; it is refused with one sentence before the first step, where
it would otherwise die mid-allocation (batch 8192 at cutoff 8192 once asked torch for 488 GiB). A later issue
makes the estimate precise enough to warn about configurations that merely come close.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.jobs.failures import EngineError
from engine.train.collate import first_fit
from engine.train.logits import chunk_len

GIB = 2**30
ACTIVATIONS_PER_LAYER = 8  # hidden-sized tensors a decoder layer keeps per token for backward, at least
ADAM_BYTES = 4 + 8  # fp32 gradient + two fp32 moments per trainable parameter


class MemoryCheckError(EngineError):
    """A configuration that cannot fit; the message says what to lower."""


@dataclass(frozen=True)
class StepMemory:
    """Bytes one training step needs at least, by what needs them."""

    tokens: int  # in the largest batch
    longest: int  # the longest row, in tokens
    weights: int
    optimizer: int
    activations: int
    logits: int
    attention: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.logits + self.attention

    def largest(self) -> tuple[str, int]:
        parts = {"the attention mask": self.attention, "the logits": self.logits, "the activations": self.activations,
                 "the weights": self.weights, "the optimizer states": self.optimizer}
        return max(parts.items(), key=lambda item: item[1])


def largest_batch(lengths: list[int], batch_size: int, packing: bool, pack_len: int | None = None) -> tuple[int, int]:
    """(rows, tokens per row) of the largest batch: packed, the longest rows first-fit into rows of at most
    `pack_len` tokens (None: one row); padded, `batch_size` rows of the longest length."""
    longest = sorted(lengths, reverse=True)[:batch_size]
    if packing:
        bins = [sum(longest[i] for i in indices) for indices in first_fit(longest, pack_len)]
        return len(bins), max(bins, default=0)
    return len(longest), max(longest, default=0)


def estimate(model: Any, trainable: int, lengths: list[int], batch_size: int, packing: bool,
             pack_len: int | None = None, chunked: bool = False) -> StepMemory:
    """The lower bound for `model` (a loaded model, adapters applied) on rows of `lengths` tokens; `chunked`: the
    loss projects one chunk of positions at a time (engine/train/logits.py), not the whole batch."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    rows, length = largest_batch(lengths, batch_size, packing, pack_len)
    tokens = rows * length
    element = next(model.parameters()).element_size()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    projected = min(tokens, chunk_len(tokens, config.vocab_size, config.hidden_size)) if chunked else tokens
    return StepMemory(
        tokens=tokens,
        longest=max(lengths, default=0),
        weights=weights,
        optimizer=trainable * ADAM_BYTES,
        activations=tokens * config.hidden_size * config.num_hidden_layers * ACTIVATIONS_PER_LAYER * element,
        logits=projected * config.vocab_size * (element + 4),
        attention=rows * length * length,  # a boolean mask: one byte per query-key pair
    )


def available_memory() -> tuple[int, str]:
    """(bytes free, where): the GPU's free memory when training runs there, else the RAM this process may still
    take (MemAvailable, capped by a cgroup memory limit where one is set)."""
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return free, "GPU memory"
    free = _meminfo_available()
    limit = _cgroup_room()
    return (min(free, limit) if limit is not None else free), "RAM"


def _meminfo_available() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or None where there is no limit."""
    try:
        limit = (root / "memory.max").read_text().strip()
        current = int((root / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - current)


def check_fits(step: StepMemory, available: int, where: str, batch_size: int, cutoff_len: int, packing: bool) -> str:
    """A log line with the bound; MemoryCheckError when the step cannot fit. The weights are loaded already, so
    what must still fit in `available` is the rest."""
    still_needed = step.total - step.weights
    line = (f"memory check: one step needs at least {step.total / GIB:.2f} GiB ({step.tokens:,} tokens in the largest "
            f"batch); {available / GIB:.1f} GiB of {where} is free beside the loaded weights")
    if still_needed <= available:
        return line
    part, size = step.largest()
    packed = f" packed into rows of {step.tokens:,} tokens in all" if packing else ""
    levers = [f"lower train.batch_size (now {batch_size})"]
    if step.longest >= cutoff_len:  # rows are cut there: a lower cutoff shortens them
        levers.append(f"lower train.cutoff_len (now {cutoff_len})")
    if packing:
        levers.append("set train.packing: off")
    raise MemoryCheckError(
        f"This configuration cannot fit: one step needs at least {step.total / GIB:,.1f} GiB ({part} of the largest "
        f"batch{packed} alone takes {size / GIB:,.1f} GiB) and {available / GIB:,.1f} GiB of {where} is free: "
        f"{', or '.join(levers)}.")
