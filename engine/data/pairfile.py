"""Preference pairs made by rating answers in a chat (the Chat tab's "better" buttons, `/better 1|2` in the terminal
chat): one JSON line per pair, appended to a .jsonl file in TRL's conversational shape, which engine/data/preference.py
reads like any pairs file (a DPO or KTO run trains on it as it is):

    {"prompt": [turns before the answers], "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}], "system": "..."}   (system only where the chat had one)

Plain Python: the web process imports it (webui/jobs/pairs.py names the workspace's files).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.sentences import said

_LOCK = threading.Lock()  # one writer at a time in a process (two visitors rating at once)


class PairError(UserError):
    """A rating that makes no pair; the message says what to do."""


def pair_row(prompt: list[dict[str, Any]], chosen: str, rejected: str, system: str | None = None) -> dict[str, Any]:
    """The pair as a file row; PairError where the prompt has no question or the two answers do not differ."""
    turns = [{"role": str(turn["role"]), "content": str(turn["content"])} for turn in prompt]
    if not any(turn["role"] == "user" and turn["content"].strip() for turn in turns):
        raise PairError(said("engine.rate.no_question"))
    if not chosen.strip() or not rejected.strip():
        raise PairError(said("engine.rate.empty_answer"))
    if chosen.strip() == rejected.strip():
        raise PairError(said("engine.rate.same_answers"))
    row: dict[str, Any] = {"prompt": turns, "chosen": [{"role": "assistant", "content": chosen}],
                           "rejected": [{"role": "assistant", "content": rejected}]}
    if system and system.strip():
        row["system"] = system
    return row


def append_pair(path: Path, row: dict[str, Any]) -> int:
    """Append `row` as one line of `path` (made with its folder where missing); the number of pairs it now holds."""
    line = json.dumps(row, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))  # one write: a line is never split between two writers
        finally:
            os.close(fd)
        return count_pairs(path)


def count_pairs(path: Path) -> int:
    """The pairs a file holds (its non-empty lines); 0 where there is no file."""
    try:
        with open(path, "rb") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0
