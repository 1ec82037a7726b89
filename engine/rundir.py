"""The names of every file in a run folder, and the small helpers that read them.

Plain Python: the web UI imports this module. The run folder is the single source of truth.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

CONFIG = "config.yaml"  # the resolved RunConfig, versions included
EVENTS = "events.jsonl"  # append-only event stream (engine.events)
STATUS = "status.json"  # atomic rewrite: state, pid and pid_started (the engine process), error
TRAIN_LOG = "train.log"  # human-readable log with full tracebacks
STDOUT_LOG = "stdout.log"  # the engine process's stdout/stderr when started by the UI
METRICS = "metrics.json"  # final figures of the run
CHECKPOINTS = "checkpoints"  # resumable Trainer checkpoints
ADAPTER = "adapter"  # PEFT adapter + tokenizer (adapter methods)
MODEL = "model"  # full model + tokenizer (full, freeze)

FINAL_STATES = ("completed", "stopped", "failed")
# What a run writes; starting a run afresh (--overwrite, "Run again") deletes these and keeps config.yaml.
OUTPUTS = (EVENTS, TRAIN_LOG, STDOUT_LOG, METRICS, CHECKPOINTS, ADAPTER, MODEL)
START_TIME_TOLERANCE_S = 0.5


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

    def process_alive(self) -> bool:
        """True while the engine process named in status.json runs (see `process_alive`)."""
        return process_alive(self.read_status())

    def clear_outputs(self) -> None:
        """Delete what an earlier attempt wrote (status.json is rewritten by the caller, config.yaml kept)."""
        for name in OUTPUTS:
            path = self.path / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def weights_dir(self) -> Path | None:
        """Where the trained result lives: adapter/ or model/, whichever a finished run wrote."""
        for folder in (self.adapter, self.model):
            if folder.is_dir() and any(folder.iterdir()):
                return folder
        return None


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """`pid` and `pid_started` (its start time) of a process, this one by default: what status.json records so
    that a reader can tell the run's process from an unrelated one that later got the same pid."""
    process = psutil.Process(pid)
    return {"pid": process.pid, "pid_started": process.create_time()}


def process_alive(status: dict[str, Any]) -> bool:
    """True if the process a status names exists, is not a zombie, and (where recorded) started when it did.

    Judged from the pid and its start time alone, never from a command line: a run started by
    `launch.py train` in a terminal is as alive as one the page started."""
    pid, started = status.get("pid"), status.get("pid_started")
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < START_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False


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
