"""Tool-call metrics: for rows whose reference reply is a call, did the model call, validly, the right tool, with
the right arguments; and on the other rows, did it refrain from calling. No torch.

A reply is read for calls as the chat reads it (engine.data.toolcalls.calls_in_reply: `<tool_call>` blocks,
Mistral's `[TOOL_CALLS]`, a whole-reply JSON object). A reply that tries to call (it opens a call block, or is a
JSON object) but whose call cannot be read is an *invalid* call: counted as a call attempt and as invalid JSON.

Figures, over the rows (`score_calls`):
    call_rows           rows whose reference is a call
    attempts            replies that tried to call (valid or not); invalid_json: those whose call could not be read
    valid_json          share of attempts whose call could be read
    name_accuracy       share of call rows answered with the reference's tool names, in order
    arguments_exact     share of call rows answered with the right names and exactly the reference's arguments
    argument_keys       over the call rows, the share of argument keys (reference's and reply's) whose values agree
    call_precision      of the replies that called, the share whose reference is a call
    call_recall         of the call rows, the share the model answered with a call
    no_call_precision   of the replies that did not call, the share whose reference is no call
    no_call_recall      of the rows whose reference is no call, the share answered without one
    per_tool            name_accuracy, arguments_exact, argument_keys per reference tool (its first call's name)
A share over no rows is None (not 0: nothing was measured).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.data.toolcalls import CALL_OPEN, MISTRAL_CALLS, PYTHON_TAG, calls_in_reply


@dataclass
class CallScore:
    """One row: what the reference asked for and what the reply did."""

    reference_call: bool
    attempted: bool = False
    valid: bool = False
    name: bool = False
    arguments: bool = False
    keys_equal: int = 0
    keys_total: int = 0
    tool: str | None = None  # the reference's (first) tool name
    calls: list[dict] = field(default_factory=list)  # the reply's calls as read


def _arguments(call: dict) -> Any:
    value = call["function"].get("arguments", {})
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def tried_to_call(text: str) -> bool:
    """The reply is written as a call in a syntax the chat reads (whether or not its JSON is valid)."""
    body = text.strip().removeprefix(PYTHON_TAG).strip()
    return CALL_OPEN in text or MISTRAL_CALLS in text or body.startswith("{")


def score_row(reply: str, reference_calls: Sequence[dict]) -> CallScore:
    """One reply (decoded with its special tokens, the end-of-turn marker removed) against the reference's calls
    (chat-message shape: {"function": {"name", "arguments"}}; empty where the reference is no call)."""
    score = CallScore(reference_call=bool(reference_calls))
    if reference_calls:
        score.tool = reference_calls[0]["function"]["name"]
    _, calls = calls_in_reply(reply)
    score.calls = calls
    score.attempted = bool(calls) or tried_to_call(reply)
    score.valid = bool(calls)
    if not reference_calls:
        return score
    names = [call["function"]["name"] for call in calls]
    score.name = names == [call["function"]["name"] for call in reference_calls]
    score.arguments = score.name and all(
        _arguments(got) == _arguments(want) for got, want in zip(calls, reference_calls, strict=True))
    for index, want in enumerate(reference_calls):
        expected = _arguments(want)
        got = _arguments(calls[index]) if index < len(calls) and score.name else {}
        expected = expected if isinstance(expected, dict) else {"": expected}
        got = got if isinstance(got, dict) else {"": got}
        keys = set(expected) | set(got)
        score.keys_total += len(keys)
        score.keys_equal += sum(key in expected and key in got and expected[key] == got[key] for key in keys)
    return score


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _call_figures(rows: Sequence[CallScore]) -> dict[str, Any]:
    """name_accuracy, arguments_exact and argument_keys over rows whose reference is a call."""
    keys_total = sum(row.keys_total for row in rows)
    return {
        "rows": len(rows),
        "name_accuracy": _share(sum(row.name for row in rows), len(rows)),
        "arguments_exact": _share(sum(row.arguments for row in rows), len(rows)),
        "argument_keys": _share(sum(row.keys_equal for row in rows), keys_total) if keys_total else (
            _share(sum(row.arguments for row in rows), len(rows))),
    }


def score_calls(scores: Sequence[CallScore]) -> dict[str, Any]:
    """The figures of the module docstring over every row's CallScore."""
    call_rows = [row for row in scores if row.reference_call]
    other_rows = [row for row in scores if not row.reference_call]
    called = [row for row in scores if row.attempted]
    silent = [row for row in scores if not row.attempted]
    per_tool: dict[str, list[CallScore]] = {}
    for row in call_rows:
        per_tool.setdefault(str(row.tool), []).append(row)
    figures = _call_figures(call_rows)
    figures.pop("rows")
    return {
        "call_rows": len(call_rows),
        "attempts": len(called),
        "invalid_json": sum(row.attempted and not row.valid for row in scores),
        "valid_json": _share(sum(row.valid for row in called), len(called)),
        **figures,
        "call_precision": _share(sum(row.reference_call for row in called), len(called)),
        "call_recall": _share(sum(row.attempted for row in call_rows), len(call_rows)),
        "no_call_precision": _share(sum(not row.reference_call for row in silent), len(silent)),
        "no_call_recall": _share(sum(not row.attempted for row in other_rows), len(other_rows)),
        "per_tool": {tool: _call_figures(rows) for tool, rows in sorted(per_tool.items())},
    }
