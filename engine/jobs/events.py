"""The one event schema of every engine process: training and export jobs, and the chat worker.

Plain Python: the web UI imports this module. An event is one JSON object on one line, with `kind`
naming its type and `t` its unix time:

    status    a job's (or the worker's) state: `state` in STATES; `error` when failed (with `error_key` and
              `error_values` where the sentence has a message key: engine.sentences); `result` holds
              what a finished job produced (an export's folders and its verification figures)
    progress  optimizer step, total steps, epoch, elapsed and estimated remaining seconds
    metrics   the figures of a step as named values (`values`: loss, learning_rate, grad_norm, tokens_per_s,
              eval_loss, or any curve a job adds)
    log       one line for the user (`message`, English; `message_key` and `message_values` where it has a key)
    chunk     (chat worker) a piece of a streamed reply
    reply     (chat worker) the answer to one request: the request's `op` and its `data`

Jobs write status/progress/metrics/log to `JOB/events.jsonl` through EventWriter (append and flush);
the chat worker writes the same objects, with the request's `id`, to its stdout. `to_line` and `parse`
are the only code that turns events into text and back: a line that is not a valid event raises
EventError, never passes as a dict. Every line carries the schema version `v` (VERSION); `migrate` reads older
lines (a run folder written before the version was added) into this version's shape.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from engine.config_migrate import FileKind, SchemaError
from engine.sentences import Sentence

STATES = (
    "queued", "starting", "loading_data", "loading_model", "training", "exporting", "verifying", "saving",
    "evaluating",
    "completed", "stopped", "failed",
    "ready",  # the chat worker waits for requests
)  # fmt: skip
FINAL_STATES = ("completed", "stopped", "failed")
LEVELS = ("info", "warning", "error")


class EventError(ValueError):
    """A line that is not an event of this schema."""


def _now() -> float:
    return round(time.time(), 3)


@dataclass(frozen=True)
class Status:
    kind: ClassVar[str] = "status"
    state: str
    error: str | None = None  # one sentence, when failed
    step: int | None = None  # training: the optimizer step the run ended at
    result: dict[str, Any] | None = None  # what a finished job produced
    died: bool | None = None  # written by the web process: the engine ended without a final status
    log_tail: str | None = None  # with died: the last lines the process printed
    id: int | None = None  # chat worker: the request this answers
    note: str | None = None  # what the state is about (a comparison's: the method it trains or evaluates)
    error_key: str | None = None  # the message key of `error` (engine.sentences), where it has one
    error_values: dict[str, Any] | None = None  # the values that fill it in
    t: float = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise EventError(f"unknown state {self.state!r}; expected one of {STATES}")
        if isinstance(self.error, Sentence) and self.error.key is not None:  # written: its key and values beside it
            record = self.error.record()
            object.__setattr__(self, "error_key", record["key"])
            object.__setattr__(self, "error_values", record["values"])
        elif self.error is not None:  # read from a line: the Sentence with its key again
            object.__setattr__(self, "error", Sentence.made(self.error, self.error_key, self.error_values))

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Progress:
    kind: ClassVar[str] = "progress"
    step: int
    total: int
    epoch: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    t: float = field(default_factory=_now)


@dataclass(frozen=True, init=False)
class Metrics:
    """The figures of one step: `values` maps a curve's name to its value ("loss", "eval_loss", "learning_rate",
    "grad_norm", "tokens_per_s", or anything a job adds: the monitor keeps one curve per name). Named values may
    also be given as keywords: Metrics(step=3, loss=1.2) is Metrics(step=3, values={"loss": 1.2}); a value that
    is None is left out."""

    kind: ClassVar[str] = "metrics"
    step: int
    values: dict[str, float]
    epoch: float | None
    t: float

    def __init__(self, step: int, values: dict[str, float] | None = None, epoch: float | None = None,
                 t: float | None = None, **named: float | None):
        merged = {**(values or {}), **named}
        try:
            clean = {str(name): float(value) for name, value in merged.items() if value is not None}
        except (TypeError, ValueError):
            raise EventError(f"metrics values must be numbers, got {merged!r}") from None
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "values", clean)
        object.__setattr__(self, "epoch", epoch)
        object.__setattr__(self, "t", _now() if t is None else t)

    loss = property(lambda self: self.values.get("loss"))
    eval_loss = property(lambda self: self.values.get("eval_loss"))
    learning_rate = property(lambda self: self.values.get("learning_rate"))
    grad_norm = property(lambda self: self.values.get("grad_norm"))
    tokens_per_s = property(lambda self: self.values.get("tokens_per_s"))


@dataclass(frozen=True)
class Log:
    """One line for the user: its English `message` (what the log file and the command line read), with the
    sentence's key and values beside it where the engine said it with one (engine.sentences_log): the page words
    it in the visitor's language."""

    kind: ClassVar[str] = "log"
    message: str
    level: str = "info"
    message_key: str | None = None
    message_values: dict[str, Any] | None = None
    t: float = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise EventError(f"unknown log level {self.level!r}; expected one of {LEVELS}")
        if isinstance(self.message, Sentence) and self.message.key is not None:  # written: key and values beside it
            record = self.message.record()
            object.__setattr__(self, "message_key", record["key"])
            object.__setattr__(self, "message_values", record["values"])
        else:  # read from a line: the Sentence with its key again (an unkeyed one where the line has none)
            object.__setattr__(self, "message", Sentence.made(self.message, self.message_key, self.message_values))


@dataclass(frozen=True)
class Chunk:
    kind: ClassVar[str] = "chunk"
    text: str
    id: int | None = None
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class Reply:
    kind: ClassVar[str] = "reply"
    op: str
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    t: float = field(default_factory=_now)


Event = Status | Progress | Metrics | Log | Chunk | Reply
EVENT_TYPES: dict[str, type] = {cls.kind: cls for cls in (Status, Progress, Metrics, Log, Chunk, Reply)}
JOB_KINDS = ("status", "progress", "metrics", "log")  # what a job's events.jsonl holds
V1_METRICS = ("loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_s")  # version 1's fixed fields


def _metrics_as_values(body: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: curves were named: a metrics line's fixed figures (V1_METRICS) moved under `values`."""
    if body.get("kind") == "metrics":
        values = {name: body.pop(name) for name in V1_METRICS if name in body}
        body["values"] = {**values, **body.get("values", {})}
    return body


# An events line is versioned like a config.yaml or a status.json: "v" on every line, one step per version.
LINE = FileKind("events line", "v", 2, {1: _metrics_as_values})
VERSION = LINE.version


def to_line(event: Event) -> str:
    """The event as one JSON line (no newline); fields that are None are left out."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    body = {"kind": event.kind, **LINE.stamp({k: v for k, v in fields.items() if v is not None})}
    return json.dumps(body, ensure_ascii=False)


def migrate(body: dict[str, Any]) -> dict[str, Any]:
    """An event object of any version as this version reads it (its "v" removed), through LINE's steps."""
    try:
        return LINE.upgrade(body)
    except SchemaError as error:
        raise EventError(f"event version {error.version!r} is not one this engine reads (it reads 1 to "
                         f"{VERSION})") from None


_NUMBER = (int, float)
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {  # what each field of a line must hold (JSON's types)
    "state": str, "error": str, "error_key": str, "error_values": dict, "step": int, "result": dict, "died": bool,
    "log_tail": str, "t": _NUMBER,
    "id": (int, str),  # a chat request's id, as the request gave it
    "total": int, "epoch": _NUMBER, "elapsed_s": _NUMBER, "eta_s": _NUMBER, "values": dict, "message": str,
    "level": str, "text": str, "op": str, "data": dict, "message_key": str, "message_values": dict,
}  # fmt: skip


def _check_types(cls: type, body: dict[str, Any], line: str | bytes) -> None:
    """EventError unless every field of a line holds its type (a text step, a list of values, a number for a
    message are a damaged line, never values the page folds in)."""
    for name, value in body.items():
        wanted = FIELD_TYPES.get(name)
        if value is None or wanted is None:
            continue
        if not isinstance(value, wanted) or (isinstance(value, bool) and wanted is not bool):
            raise EventError(f"bad {cls.kind} event {str(line)[:80]!r}: {name} holds {type(value).__name__}")
    if cls is Metrics and any(not isinstance(v, _NUMBER) or isinstance(v, bool) for v in body["values"].values()):
        raise EventError(f"bad metrics event {str(line)[:80]!r}: its values must be numbers")


def parse(line: str | bytes) -> Event:
    """One JSON line -> its typed event; EventError for anything else (not JSON, unknown kind or field)."""
    try:
        body = json.loads(line)
    except ValueError as error:
        raise EventError(f"not a JSON line: {str(line)[:80]!r}") from error
    if not isinstance(body, dict):
        raise EventError(f"an event is a JSON object, got {type(body).__name__}")
    try:
        body = migrate(body)
    except (TypeError, AttributeError):  # a version 1 line whose values are not a mapping
        raise EventError(f"bad event {str(line)[:80]!r}: its fields do not have their types") from None
    kind = body.pop("kind", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventError(f"unknown event kind in {str(line)[:80]!r}; expected one of {tuple(EVENT_TYPES)}")
    unknown = set(body) - {f.name for f in dataclasses.fields(cls)}
    if unknown:  # keywords Metrics would take as values: a line names only its fields
        raise EventError(f"bad {cls.kind} event {str(line)[:80]!r}: unknown fields {sorted(unknown)}")
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name not in ("t", "epoch")]
    if cls is Metrics:
        required = ["step", "values"]
    missing = [name for name in required if body.get(name) is None]
    if missing:
        raise EventError(f"bad {cls.kind} event {str(line)[:80]!r}: it has no {', '.join(missing)}")
    _check_types(cls, body, line)
    try:
        return cls(**body)
    except TypeError as error:
        raise EventError(f"bad {cls.kind} event {str(line)[:80]!r}: {error}") from None


class EventWriter:
    """Appends one line per event to a job's events.jsonl and flushes it at once, so a reader sees it
    immediately."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(self, event: Event) -> Event:
        if event.kind not in JOB_KINDS:
            raise EventError(f"a job writes {JOB_KINDS} events, not {event.kind!r}")
        self._file.write(to_line(event) + "\n")
        self._file.flush()
        return event

    def status(self, state: str, **fields: Any) -> Status:
        return self.write(Status(state=state, **fields))

    def log(self, message: str, level: str = "info") -> Log:
        return self.write(Log(message=message, level=level))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventTail:
    """Reads only the bytes appended since the last call; a partial last line waits for its newline."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset

    def read_new(self, bad: list[str] | None = None) -> list[Event]:
        """The complete events appended since the last call. A line that is no event raises EventError, or, where
        a list `bad` is given, is skipped and its reason appended to it (a reader that must go on past one
        damaged line: the page's monitor)."""
        if not self.path.is_file():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                events.append(parse(line))
            except EventError as error:
                if bad is None:
                    raise
                bad.append(str(error))
        return events


def read_events(path: Path) -> list[Event]:
    """All complete events of a file (for tests and the command line)."""
    return EventTail(path).read_new()


def final_status(events: list[Event]) -> Status | None:
    """The last status event, or None."""
    for event in reversed(events):
        if isinstance(event, Status):
            return event
    return None
