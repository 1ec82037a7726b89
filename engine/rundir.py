"""The names of every file in a run folder, and the small helpers that read them.

Plain Python: the web UI imports this module. The run folder is the single source of truth.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG = "config.yaml"  # the resolved RunConfig, versions included
EVENTS = "events.jsonl"  # append-only event stream (engine.events)
STATUS = "status.json"  # atomic rewrite: state, pid, error
TRAIN_LOG = "train.log"  # human-readable log with full tracebacks
STDOUT_LOG = "stdout.log"  # the engine process's stdout/stderr when started by the UI
METRICS = "metrics.json"  # final figures of the run
CHECKPOINTS = "checkpoints"  # resumable Trainer checkpoints
ADAPTER = "adapter"  # PEFT adapter + tokenizer (adapter methods)
MODEL = "model"  # full model + tokenizer (full, freeze)

FINAL_STATES = ("completed", "stopped", "failed")


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    config = property(lambda self: self.path / CONFIG)
    events = property(lambda self: self.path / EVENTS)
    status = property(lambda self: self.path / STATUS)
    train_log = property(lambda self: self.path / TRAIN_LOG)
    stdout_log = property(lambda self: self.path / STDOUT_LOG)
    metrics = property(lambda self: self.path / METRICS)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    adapter = property(lambda self: self.path / ADAPTER)
    model = property(lambda self: self.path / MODEL)

    def read_status(self) -> dict[str, Any]:
        """The last status written, or {} when there is none yet."""
        return read_json(self.status)

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.metrics)

    def last_checkpoint(self) -> Path | None:
        """The newest `checkpoint-STEP` folder, or None."""
        if not self.checkpoints.is_dir():
            return None
        steps = [(int(p.name.split("-")[-1]), p) for p in self.checkpoints.glob("checkpoint-*") if p.name[11:].isdigit()]
        return max(steps)[1] if steps else None

    def weights_dir(self) -> Path | None:
        """Where the trained result lives: adapter/ or model/, whichever a finished run wrote."""
        for folder in (self.adapter, self.model):
            if folder.is_dir() and any(folder.iterdir()):
                return folder
        return None


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
