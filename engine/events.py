"""The event stream of a run: schema, an append-and-flush writer, an incremental reader.

Plain Python: the web UI imports this module. Every line of RUN/events.jsonl is one JSON object with
`kind` in KINDS and `t` (unix time). The last `status` event of a finished run has `state` in
rundir.FINAL_STATES and, when failed, `error`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

KINDS = ("status", "progress", "metrics", "log")
STATES = ("queued", "starting", "loading_data", "loading_model", "training", "saving", "completed", "stopped", "failed")


class EventWriter:
    """Appends one JSON line per event and flushes it at once, so a reader sees it immediately."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {KINDS}")
        event = {"kind": kind, "t": round(time.time(), 3), **fields}
        self._file.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._file.flush()
        return event

    def status(self, state: str, **fields: Any) -> dict[str, Any]:
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
        return self.write("status", state=state, **fields)

    def log(self, message: str, level: str = "info") -> dict[str, Any]:
        return self.write("log", level=level, message=message)

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

    def read_new(self) -> list[dict[str, Any]]:
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
            if line.strip():
                events.append(json.loads(line))
        return events


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events of a file (for tests and for reopening a finished run)."""
    return EventTail(path).read_new()


def final_status(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last status event, or None."""
    for event in reversed(events):
        if event["kind"] == "status":
            return event
    return None
