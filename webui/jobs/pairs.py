"""Pairs from the chat: the Chat tab's rating of two answers (or a better answer written by the visitor) appended
to a preference dataset file of the workspace, WORKSPACE/uploads/pairs/NAME.jsonl, which the Train tab lists
with the other datasets (with its count of pairs) for a DPO or KTO run. The row and the file are
engine.data.pairfile's (the terminal chat's `/better 1|2` writes the same rows). No gradio here.

The prompt of a pair is the conversation before the rated answers as the tuned model's column holds it (the model
the pairs are for); answer 1 is the tuned model's, answer 2 the base model's (side by side)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.data.pairfile import PairError, append_pair, count_pairs, pair_row
from engine.sentences import said
from webui.jobs.paths import safe_name

PAIRS = "pairs"  # the folder under WORKSPACE/uploads
DEFAULT_NAME = "chat-pairs"


def pairs_file(uploads: Path, name: str | None) -> Path:
    """WORKSPACE/uploads/pairs/NAME.jsonl (NAME one plain name; PathError otherwise; ".jsonl" may be given)."""
    stem = (name or "").strip().removesuffix(".jsonl") or DEFAULT_NAME
    return uploads / PAIRS / f"{safe_name(stem)}.jsonl"


def english_label(name: str, n: int) -> str:
    return f"{name} · {n} pair{'s' if n != 1 else ''}"


def listed_pairs(uploads: Path, label: Callable[[str, int], str] = english_label) -> list[tuple[str, Path, int]]:
    """(label, file, count) of every pairs file, newest first: "pairs/chat-pairs.jsonl · 3 pairs" (`label` writes
    it from the name and the count: the page passes webui.i18n.pairs_label, in the visitor's language)."""
    folder = uploads / PAIRS
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [(label(f"{PAIRS}/{path.name}", count), path, count)
            for path in files for count in [count_pairs(path)]]


def text_of(message: dict[str, Any]) -> str:
    """A chat message's text (a plain string, or the text parts the Chatbot keeps); PairError for a tool call or
    anything that is not text."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    if message.get("metadata") or not all(isinstance(p, dict) and p.get("type") == "text" for p in parts):
        raise PairError(said("engine.rate.not_text"))
    return "".join(part["text"] for part in parts)


def last_answer(history: list[dict[str, Any]]) -> tuple[list[dict[str, str]], str]:
    """(the turns before the last answer, the last answer) of a chat column; PairError where it ends in none."""
    if not history or history[-1].get("role") != "assistant":
        raise PairError(said("engine.rate.no_answer"))
    turns = [{"role": m["role"], "content": text_of(m)} for m in history]
    return turns[:-1], turns[-1]["content"]


def rate(uploads: Path, name: str | None, tuned: list[dict], base: list[dict], better: int | None,
         written: str = "", system: str | None = None) -> tuple[Path, int]:
    """Append one pair to the named pairs file and return (file, pairs it holds now).

    better=1: the tuned answer is chosen over the base one; better=2: the base answer over the tuned one (both
    need the side-by-side view); better=None with `written`: the visitor's answer is chosen over the tuned one."""
    prompt, first = last_answer(tuned)
    if better in (1, 2):
        if not base:
            raise PairError(said("engine.rate.needs_two"))
        _, second = last_answer(base)
        chosen, rejected = (first, second) if better == 1 else (second, first)
    elif (written or "").strip():
        chosen, rejected = written.strip(), first
    else:
        raise PairError(said("engine.rate.choose"))
    path = pairs_file(uploads, name)
    return path, append_pair(path, pair_row(prompt, chosen, rejected, system))
