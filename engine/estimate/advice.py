"""A configuration that fits, where one does not (issue 26 item 4): the same rows per update, fewer at a time.

`suggest` tries, by the estimate (engine/estimate/memory.py), gradient checkpointing on and smaller micro-batches
whose gradient accumulation keeps the effective batch (batch_size x gradient_accumulation_steps), least change
first, and returns the first whose estimate fits the free memory with the estimate's accuracy to spare. A shorter
cutoff drops the ends of long rows, so it is only offered (`Advice.cutoff`), never applied.

The advice is said three ways: `sentence()` for the refusal and the failed run's error, `diff()` as the CLI prints
it (the config keys that change), and `apply(config)`, the RunConfig that "Run again with this" starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config import RunConfig
from engine.estimate.memory import ACCURACY, GIB, MemoryEstimate
from engine.sentences import Sentence, said

ADVICE = "advice.json"  # in a run folder: the advice of the engine's refusal, for the Runs tab
Estimator = Callable[[RunConfig], MemoryEstimate | None]


@dataclass(frozen=True)
class Advice:
    """Changes to train.* ({key: (now, then)}) whose estimate fits; `cutoff`: a shorter train.cutoff_len that
    would fit at the current batch, offered only (None where none does or none is needed)."""

    changes: dict[str, tuple[Any, Any]]
    estimate: MemoryEstimate | None
    cutoff: int | None = None

    def apply(self, config: RunConfig) -> RunConfig:
        """`config` with the changes (and nothing else: the cutoff is the user's to agree to)."""
        train = config.train.model_copy(update={key: then for key, (_, then) in self.changes.items()})
        return config.model_copy(update={"train": train})

    def sentence(self) -> Sentence | str:
        """'set train.batch_size 2 (now 8) ...': the clause a refusal or a failed run's error ends with."""
        if not self.changes:
            return ""
        changes = [said("engine.advice.change", key=f"train.{key}", then=_value(then), now=_value(now))
                   for key, (now, then) in self.changes.items()]
        listed = changes[-1]
        for change in reversed(changes[:-1]):
            listed = said("engine.advice.and", first=change, then=listed)
        rows = ""
        if "batch_size" in self.changes:
            batch, accumulation = self.changes["batch_size"][1], self.changes["gradient_accumulation_steps"][1]
            rows = said("engine.advice.rows", rows=batch * accumulation)
        fits = said("engine.advice.fits_in", gib=f"{self.estimate.total / GIB:.1f}") if self.estimate is not None \
            else said("engine.advice.fits")
        return said("engine.advice", changes=listed, fits=fits, rows=rows)

    def to_json(self) -> dict[str, Any]:
        return {"changes": {key: list(pair) for key, pair in self.changes.items()}, "cutoff": self.cutoff,
                "sentence": self.sentence(), "estimate_bytes": self.estimate.total if self.estimate else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Advice:
        """The advice as to_json wrote it (RUN/advice.json); only train.* keys the schema knows are kept."""
        known = set(RunConfig.model_fields["train"].annotation.model_fields)  # type: ignore[union-attr]
        changes = {str(key): (pair[0], pair[1]) for key, pair in dict(data.get("changes") or {}).items()
                   if key in known and isinstance(pair, list) and len(pair) == 2}
        cutoff = data.get("cutoff")
        return cls(changes, None, cutoff if isinstance(cutoff, int) else None)

    def diff(self) -> str:
        """The changes as a config diff (YAML keys under train:), and the cutoff offered as a comment."""
        lines = ["train:"]
        for key, (now, then) in self.changes.items():
            lines += [f"-  {key}: {_value(now)}", f"+  {key}: {_value(then)}"]
        if self.cutoff is not None:
            lines.append(f"#  or, if rows may be cut shorter: cutoff_len: {self.cutoff}")
        return "\n".join(lines)


def _value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def candidates(config: RunConfig) -> list[dict[str, tuple[Any, Any]]]:
    """Changes to try, least first: checkpointing alone, then each smaller divisor of the batch size (the
    accumulation multiplied by the same factor), without and then with checkpointing."""
    t = config.train
    found: list[dict[str, tuple[Any, Any]]] = []
    checkpointing = [False, True] if not t.gradient_checkpointing else [False]
    for batch in [b for b in range(t.batch_size, 0, -1) if t.batch_size % b == 0]:
        for turn_on in checkpointing:
            change: dict[str, tuple[Any, Any]] = {}
            if batch != t.batch_size:
                accumulation = t.gradient_accumulation_steps * (t.batch_size // batch)
                change = {"batch_size": (t.batch_size, batch),
                          "gradient_accumulation_steps": (t.gradient_accumulation_steps, accumulation)}
            if turn_on:
                change["gradient_checkpointing"] = (False, True)
            if change:
                found.append(change)
    return found


def fits(found: MemoryEstimate | None, free: int, already: int = 0) -> bool:
    """Whether the estimate, less the `already` bytes in memory (the loaded weights, the running process), fits
    `free` bytes with ACCURACY to spare."""
    return found is not None and (found.total - already) * (1 + ACCURACY) <= free


def suggest(config: RunConfig, estimator: Estimator, free: int, already: int = 0) -> Advice | None:
    """The least change whose estimate fits `free` bytes beside `already` (fits); None where none does (then a
    smaller model, another method or a shorter cutoff is the user's choice: `Advice.cutoff` where one fits)."""
    for change in candidates(config):
        found = estimator(Advice(change, None).apply(config))
        if fits(found, free, already):
            return Advice(change, found, None)
    cutoff = shorter_cutoff(config, estimator, free, already)
    return Advice({}, None, cutoff) if cutoff is not None else None


MEMORY_ERRORS = ("This configuration cannot fit", "Out of memory", "Out of GPU memory", "out-of-memory killer")


def after_failure(config: RunConfig, model_config: dict[str, Any], error: str, free: int, device: str = "cpu"
                  ) -> Advice | None:
    """For a run that failed for memory (its error one of MEMORY_ERRORS' sentences): the least change whose
    estimate (from config.json) fits both `free` and under what failed, by the estimate's accuracy. None for
    another failure, or where config.json gives no estimate."""
    from engine.estimate.memory import estimate

    if not any(marker in error for marker in MEMORY_ERRORS):
        return None
    failed = estimate(config, model_config, device)
    if failed is None:
        return None
    budget = min(free, int(failed.total * (1 - ACCURACY)))  # what died needed more than it had
    return suggest(config, lambda changed: estimate(changed, model_config, device), budget)


def shorter_cutoff(config: RunConfig, estimator: Estimator, free: int, already: int = 0) -> int | None:
    """The longest cutoff (halving from the current one, at least 64) whose estimate fits at the current batch."""
    cutoff = config.train.cutoff_len // 2
    while cutoff >= 64:
        shorter = config.model_copy(update={"train": config.train.model_copy(update={"cutoff_len": cutoff})})
        if fits(estimator(shorter), free, already):
            return cutoff
        cutoff //= 2
    return None
