"""Follow one run's events.jsonl: each refresh reads only the bytes appended since the last one
(engine.events.EventTail) and folds them into a RunSnapshot the page renders."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.events import EventTail
from engine.rundir import FINAL_STATES, RunDir

LOG_LINES = 400


@dataclass
class RunSnapshot:
    """Everything the page shows about a run while it trains; `version` grows with every new event."""

    name: str
    state: str = "starting"
    step: int = 0
    total: int = 0
    epoch: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    tokens_per_s: float | None = None
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    error: str | None = None
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


def _format_log(event: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("t", time.time())))
    kind = event["kind"]
    if kind == "log":
        return f"{stamp} {event.get('level', 'info'):<7} {event.get('message', '')}"
    if kind == "status":
        error = f": {event['error']}" if event.get("error") else ""
        return f"{stamp} status  {event.get('state')}{error}"
    loss = event.get("loss", event.get("eval_loss"))
    name = "loss" if "loss" in event else "eval_loss"
    return f"{stamp} metrics step {event.get('step')} {name}={loss}"


class RunMonitor:
    """Incremental reader of one run; thread-safe, shared by every browser session."""

    def __init__(self, run_dir: Path):
        self.run = RunDir(run_dir)
        self._tail = EventTail(self.run.events)
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._snap = RunSnapshot(name=self.run.name)
        self._head: bytes | None = None  # the first line of the events file being followed
        self._lock = threading.Lock()

    @property
    def offset(self) -> int:
        return self._tail.offset

    def refresh(self) -> RunSnapshot:
        """Read new events (only the new bytes) and return a copy of the folded state."""
        with self._lock:
            if self._tail.offset and self._first_line() != self._head:
                self._start_over()
            events = self._tail.read_new()
            for event in events:
                self._apply(event)
            if events:
                self._snap.version += 1
                self._snap.log = list(self._log)
                self._head = self._head or self._first_line()
            elif self._tail.offset == 0:  # nothing streamed yet: show what status.json says (e.g. queued)
                self._snap.state = self.run.read_status().get("state", self._snap.state)
            return RunSnapshot(**{**self._snap.__dict__, "train_loss": list(self._snap.train_loss),
                                  "eval_loss": list(self._snap.eval_loss), "log": list(self._snap.log)})

    def _first_line(self) -> bytes | None:
        try:
            with open(self.run.events, "rb") as f:
                return f.readline()
        except FileNotFoundError:
            return None

    def _start_over(self) -> None:
        """The run was started afresh (`--overwrite`, Run again): a new events file replaced the one followed.
        Forget what was folded; the version keeps growing so that no page takes the new run for the old."""
        self._tail = EventTail(self.run.events)
        self._log.clear()
        self._snap = RunSnapshot(name=self.run.name, version=self._snap.version + 1)
        self._head = None

    def note(self, line: str, state: str | None = None, error: str | None = None) -> None:
        """Add a line the UI itself knows (e.g. the engine died) to the snapshot."""
        with self._lock:
            self._log.append(line)
            self._snap.log = list(self._log)
            if state:
                self._snap.state = state
            if error:
                self._snap.error = error
            self._snap.version += 1

    def _apply(self, event: dict[str, Any]) -> None:
        snap, kind = self._snap, event.get("kind")
        if kind == "status":
            snap.state = event.get("state", snap.state)
            snap.error = event.get("error") or snap.error
        elif kind == "progress":
            snap.step = int(event.get("step", snap.step))
            snap.total = int(event.get("total", snap.total) or 0)
            snap.epoch = float(event.get("epoch", snap.epoch) or 0.0)
            snap.elapsed_s = float(event.get("elapsed_s", snap.elapsed_s) or 0.0)
            snap.eta_s = event.get("eta_s")
        elif kind == "metrics":
            step = int(event.get("step", snap.step))
            if event.get("loss") is not None:
                snap.train_loss.append((step, float(event["loss"])))
            if event.get("eval_loss") is not None:
                snap.eval_loss.append((step, float(event["eval_loss"])))
            if event.get("tokens_per_s") is not None:
                snap.tokens_per_s = float(event["tokens_per_s"])
        if kind != "progress":
            self._log.append(_format_log(event))
