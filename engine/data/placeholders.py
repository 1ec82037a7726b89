"""`{{name}}` placeholders in a dataset's text (LLaMA-Factory's identity.json: "I am {{name}}, an AI assistant
developed by {{author}}."): found for the inspection, filled from `data.replace` for training.

A placeholder is two braces, an identifier (letters, digits, _; case counts) and two braces, with nothing
between: `{{ name }}` with spaces is how Jinja, Django and Vue code is written, so it stays text. Filling is
literal (the value is inserted as it is: no format strings, no escapes) and reads only the text the model sees
as text: every message's content and reasoning, and plain-text rows; tool schemas and call arguments (JSON)
are left alone. A placeholder is judged on the file's text, before filling, so a value may itself hold braces
(fill `{{name}}` with `{{name}}` to train it as written).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from engine.config import PLACEHOLDER_NAME
from engine.jobs.failures import DataError

PLACEHOLDER = re.compile(r"\{\{(" + PLACEHOLDER_NAME.pattern + r")\}\}")
TEXT_KEYS = ("content", "reasoning_content")  # a message's text fields, as engine/data/formats.py writes messages


def text_fields(row: dict[str, Any]) -> Iterator[str]:
    """Every text of a normalised row that placeholders may stand in (see the module docstring)."""
    if "text" in row:
        yield row["text"]
    for message in row.get("messages", ()):
        for key in TEXT_KEYS:
            if isinstance(message.get(key), str):
                yield message[key]


def find_placeholders(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`[{"name", "count", "rows"}]` per placeholder in the rows' text, in order of first appearance: how often it
    appears and in how many rows."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        seen: set[str] = set()
        for text in text_fields(row):
            if "{{" not in text:
                continue
            for match in PLACEHOLDER.finditer(text):
                tally = counts.setdefault(match[1], [0, 0])
                tally[0] += 1
                if match[1] not in seen:
                    seen.add(match[1])
                    tally[1] += 1
    return [{"name": name, "count": count, "rows": holding} for name, (count, holding) in counts.items()]


def fill(text: str, replace: dict[str, str], missing: list[str]) -> str:
    """`text` with every placeholder that `replace` names swapped for its value, literally; the names it does not
    know are appended to `missing` and stay as written."""
    if "{{" not in text:
        return text

    def value(match: re.Match[str]) -> str:
        if match[1] in replace:
            return replace[match[1]]
        missing.append(match[1])
        return match[0]

    return PLACEHOLDER.sub(value, text)


def _filled_row(row: dict[str, Any], fill_text: Callable[[str], str]) -> dict[str, Any]:
    if "text" in row:
        return {**row, "text": fill_text(row["text"])}
    messages = []
    for message in row["messages"]:
        texts = {key: fill_text(message[key]) for key in TEXT_KEYS if isinstance(message.get(key), str)}
        messages.append({**message, **texts})
    return {**row, "messages": messages}


def fill_placeholders(rows: list[dict[str, Any]], replace: dict[str, str], source: str) -> list[dict[str, Any]]:
    """The rows with their placeholders filled from `replace` (data.replace); a DataError naming the file, the
    first row that holds a placeholder `replace` does not fill, and that placeholder."""
    out = []
    for number, row in enumerate(rows, 1):
        missing: list[str] = []
        out.append(_filled_row(row, partial(fill, replace=replace, missing=missing)))
        if missing:
            raise DataError(unfilled(source, number, missing[0]))
    return out


def unfilled(source: str, number: int, name: str) -> str:
    """The sentence for a row that still holds a placeholder nothing fills."""
    return (f"{source} row {number} holds the placeholder {{{{{name}}}}}, which nothing fills: give it a value under "
            f"data.replace ({name}: ...) or in the Train tab's field for it (the placeholder itself trains it as "
            "written).")


def fill_known(value: Any, replace: dict[str, str]) -> Any:
    """`value` (a row, a raw record, a list or a text) with the placeholders `replace` names filled, the others left
    as written: what the dataset inspection shows while the page's fields are being filled."""
    if isinstance(value, str):
        return fill(value, replace, [])
    if isinstance(value, list):
        return [fill_known(item, replace) for item in value]
    if isinstance(value, dict):
        return {key: fill_known(item, replace) for key, item in value.items()}
    return value
