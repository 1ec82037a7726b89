"""Follow one job's events.jsonl (a training run, an export): each refresh reads only the bytes appended
since the last one (engine.jobs.events.EventTail) and folds the typed events into a JobSnapshot the page renders.

This is the web process's one reader of events files: the scheduler keeps one JobMonitor per job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from engine.jobs.events import FINAL_STATES, Event, EventTail, Log, Metrics, Progress, Status
from engine.jobs.rundir import EVENTS, JobDir
from engine.sentences import Sentence, said

log = logging.getLogger(__name__)

LOG_LINES = 400  # the newest lines a job's log box shows
FIRST_LINES = 60  # and its first ones: the run's setup (data read, trainable parameters, batching, memory check)


class LogLines:
    """A job's log lines as its log box shows them: the first FIRST_LINES, then the newest LOG_LINES, with one line
    saying how many were left out between them (a long run's setup lines stay in view)."""

    def __init__(self) -> None:
        self.first: list[Sentence] = []
        self.newest: deque[Sentence] = deque(maxlen=LOG_LINES)
        self.left_out = 0

    def append(self, line: Sentence) -> None:
        if len(self.first) < FIRST_LINES:
            self.first.append(line)
            return
        if len(self.newest) == LOG_LINES:
            self.left_out += 1
        self.newest.append(line)

    def lines(self) -> list[Sentence]:
        gap = [said("engine.log.left_out", n=self.left_out)] if self.left_out else []
        return [*self.first, *gap, *self.newest]


@dataclass
class JobSnapshot:
    """Everything the page shows about a job while it runs; `version` grows with every new event."""

    name: str
    state: str = "starting"
    step: int = 0
    total: int = 0
    epoch: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    tokens_per_s: float | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # one per value name a job reports
    log: list[str] = field(default_factory=list)  # Sentences: English, worded in the visitor's language by the page
    error: str | None = None
    result: dict[str, Any] | None = None  # what a finished job produced (an export's folders and figures)
    started: float | None = None  # time of the first event
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def train_loss(self) -> list[tuple[int, float]]:
        return self.curves.get("loss", [])

    @property
    def eval_loss(self) -> list[tuple[int, float]]:
        return self.curves.get("eval_loss", [])


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


LEVEL_KEYS = {"info": "engine.log.level.info", "warning": "engine.log.level.warning", "error": "engine.log.level.error"}


def format_event(event: Event) -> Sentence:
    """One log line of the page for an event (progress events are shown by the progress bar instead): the English
    line, with its key and values (engine.sentences_log's `engine.log.line.*`) so the page words it in the
    visitor's language; an engine's keyed sentence inside it is worded too, a line without a key stays as written."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.t))
    if isinstance(event, Log):
        level = Sentence(event.level, LEVEL_KEYS.get(event.level))
        return said("engine.log.line.log", stamp=stamp, level=level, message=event.message)
    if isinstance(event, Status):
        state = Sentence(event.state, f"state.{event.state}")  # the page's own words for a state
        if event.error:
            return said("engine.log.line.status_error", stamp=stamp, state=state, error=event.error)
        return said("engine.log.line.status", stamp=stamp, state=state)
    if isinstance(event, Metrics):
        shown = "loss" if event.loss is not None else "eval_loss" if event.eval_loss is not None else None
        figures = [(shown, event.values[shown])] if shown else list(event.values.items())
        return said("engine.log.line.metrics", stamp=stamp, step=event.step,
                    figures=" ".join(f"{k}={_number(v)}" for k, v in figures))
    return said("engine.log.line.other", stamp=stamp, kind=event.kind)


def add_point(curve: list[tuple[int, float]], step: int, value: float) -> None:
    """Append a point; a step at or before the last one (a run resumed from an earlier checkpoint trains those
    steps again) supersedes the points from that step on, so the curve never runs back."""
    while curve and curve[-1][0] >= step:
        curve.pop()
    curve.append((step, float(value)))


class JobMonitor:
    """Incremental reader of one job; thread-safe, shared by every browser session."""

    def __init__(self, job: JobDir):
        self.job = job
        self._tail = EventTail(job.events)
        self._log = LogLines()
        self._snap = JobSnapshot(name=job.name)
        self._head: bytes | None = None  # the first line of the events file being followed
        self._seen_status = False  # a status event was folded in
        self._lock = threading.Lock()

    @property
    def offset(self) -> int:
        return self._tail.offset

    def refresh(self) -> JobSnapshot:
        """Read new events (only the new bytes) and return a copy of the folded state."""
        with self._lock:
            if self._tail.offset and self._first_line() != self._head:
                self._start_over()
            bad: list[str] = []
            events = self._tail.read_new(bad)  # a damaged line is skipped, said in the log, and the rest followed
            for reason in bad:
                log.warning("%s: %s: %s", self.job.name, EVENTS, reason)
                events.append(Log(message=said("engine.log.damaged", file=EVENTS, reason=reason), level="warning"))
            for event in events:
                self._apply(event)
            if events:
                self._snap.version += 1
                self._snap.log = self._log.lines()
                self._head = self._head or self._first_line()
            if not self._seen_status:  # no status streamed yet (or only damaged lines): what status.json says
                self._snap.state = self.job.read_status().get("state", self._snap.state)
            snap = self._snap
            return replace(snap, curves={name: list(points) for name, points in snap.curves.items()},
                           log=list(snap.log))

    def _first_line(self) -> bytes | None:
        try:
            with open(self.job.events, "rb") as f:
                return f.readline()
        except FileNotFoundError:
            return None

    def _start_over(self) -> None:
        """The job was started afresh (`--overwrite`, Run again, a new export): a new events file replaced the
        one followed. Forget what was folded; the version keeps growing so no page takes the new job for the old."""
        self._tail = EventTail(self.job.events)
        self._log = LogLines()
        self._snap = JobSnapshot(name=self.job.name, version=self._snap.version + 1)
        self._head = None
        self._seen_status = False

    def _apply(self, event: Event) -> None:
        snap = self._snap
        snap.started = snap.started or event.t
        if isinstance(event, Status):
            self._seen_status = True
            if event.state == "starting":  # a new attempt (a resume appends to the same events file)
                snap.error, snap.result = None, None
            snap.state = event.state
            snap.error = event.error or snap.error
            snap.result = event.result if event.result is not None else snap.result
        elif isinstance(event, Progress):
            snap.step, snap.total, snap.epoch = event.step, event.total or 0, event.epoch or 0.0
            snap.elapsed_s, snap.eta_s = event.elapsed_s or 0.0, event.eta_s
        elif isinstance(event, Metrics):
            for name, value in event.values.items():
                add_point(snap.curves.setdefault(name, []), event.step, value)
            if event.tokens_per_s is not None:
                snap.tokens_per_s = float(event.tokens_per_s)
        if not isinstance(event, Progress):
            self._log.append(format_event(event))
