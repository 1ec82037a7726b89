"""`data.reasoning: drop`: assistant replies without their reasoning, before any template sees them.

Reasoning is a `reasoning_content` field (formats.py reads `reasoning` and `thinking` into it) or a
`<think>...</think>` block in the reply's text. The reply proper is what follows the last `</think>`, as Qwen's
templates split it (so a reply whose opening `<think>` the template wrote, as DeepSeek-R1's data has it, loses
its reasoning too); a reply that opens `<think>` and never closes it is all reasoning. With `keep` (the default)
rows are trained as they are, reasoning where the template renders it (engine/data/templates.py).
"""

from __future__ import annotations

from typing import Any

from engine.data.templates import REASONING_FIELDS, THINK_CLOSE, THINK_OPEN
from engine.jobs.failures import DataError


def reply_without_reasoning(content: str) -> str:
    """The reply's text with its `<think>` reasoning removed."""
    if THINK_CLOSE in content:
        return content.rsplit(THINK_CLOSE, 1)[1].lstrip()
    if content.lstrip().startswith(THINK_OPEN):
        return ""
    return content


def _without_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    plain = {key: value for key, value in message.items() if key not in REASONING_FIELDS}
    plain["content"] = reply_without_reasoning(message.get("content") or "")
    return plain


def drop_reasoning(rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """The rows with the reasoning cut out of every assistant reply; a DataError naming the file, row and turn
    of a reply that was nothing but reasoning (nothing would be left to train on)."""
    out = []
    for number, row in enumerate(rows, 1):
        if "messages" not in row:
            out.append(row)
            continue
        messages = []
        for turn, message in enumerate(row["messages"], 1):
            if message["role"] != "assistant":
                messages.append(message)
                continue
            plain = _without_reasoning(message)
            if not plain["content"].strip() and not plain.get("tool_calls"):
                raise DataError(f"{source} row {number} turn {turn}: the assistant reply is only reasoning, so "
                                "data.reasoning: drop leaves nothing to train on: remove the turn or the row, or "
                                "keep the reasoning (data.reasoning: keep).")
            messages.append(plain)
        out.append({**row, "messages": messages})
    return out
