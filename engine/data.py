"""Dataset file -> chat messages -> token ids with everything but the assistant's words masked.

Contract:
- `load_rows(cfg)` reads .json/.jsonl/.csv/.parquet/.txt, applies `cfg.columns`, detects (or takes
  `cfg.format`) one of alpaca, sharegpt, openai, prompt_completion, text, and returns rows shaped
  `{"messages": [{"role", "content"}, ...]}` or `{"text": str}`. It needs no model or tokenizer.
- Every problem with the file is a `DataError` whose message is one sentence naming the file, the first
  bad row (1-based) and the field, and saying what to change.
- `tokenize_rows` renders each conversation with the tokenizer's chat template, tokenizes it once, and
  labels (trains on) only the tokens of the assistant replies as the template writes them, each with the
  template's end-of-turn marker; labels are -100 elsewhere. engine/masking.py locates the replies, for
  templates that are not prefix-stable too. Plain text trains on every token, with eos appended.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.config import DataConfig, RunConfig
from engine.masking import MaskingError, render_with_spans
from engine.masking import template_notes as masking_notes
from engine.toolcalls import ToolDataError, calls_from_openai, calls_from_sharegpt, link_tool_results, parse_tools

IGNORE_INDEX = -100
EXTENSIONS = (".json", ".jsonl", ".csv", ".parquet", ".txt")
FORMATS = ("alpaca", "sharegpt", "openai", "prompt_completion", "text")
# Fields a row needs, per format: each group lists alternatives, one of which must be present.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "alpaca": (("instruction",), ("output",)),
    "sharegpt": (("conversations", "messages"),),
    "openai": (("messages",),),
    "prompt_completion": (("prompt",), ("completion", "response")),
    "text": (("text",),),
}
STANDARD_COLUMNS = (
    "instruction", "input", "output", "system", "history", "conversations", "messages",
    "prompt", "completion", "response", "text", "tools",
)  # fmt: skip
EXPECTED = (
    "alpaca (instruction, output), sharegpt (conversations), openai (messages), "
    "prompt_completion (prompt, completion) or text (text)"
)
ROLES = {
    "system": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant", "model": "assistant",
    "function_call": "assistant",  # LLaMA-Factory sharegpt: the value is the call
    "observation": "tool", "tool": "tool", "function": "tool", "ipython": "tool",
}  # fmt: skip
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")  # an assistant turn's reasoning, trained with it
SPECIAL_CHATML = ("<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# For tokenizers without the ChatML tokens: the same layout with the markers as plain text and the
# tokenizer's own eos ending each turn. Adding <|im_start|>/<|im_end|> as new tokens would leave their
# embedding and output rows untrained (LoRA does not train them), so the model would not learn to stop,
# and the adapter would need the grown embeddings saved beside it.
CHATML_EOS_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PREVIEW_ROWS = 5

Messages = list[dict[str, Any]]
Span = tuple[int, int]


class DataError(ValueError):
    """A dataset that cannot be used; the message is one sentence that says what to change."""


class _RowError(ValueError):
    """A problem inside one row; the caller adds the file name and row number."""

    def __init__(self, field_name: str, problem: str):
        self.field_name = field_name
        self.problem = problem
        super().__init__(f"field '{field_name}' {problem}")


@dataclass
class TokenStats:
    rows_in: int = 0
    rows_out: int = 0
    truncated: int = 0  # kept, but cut to cutoff_len
    dropped: int = 0  # too long under overlength=drop, or no target token left
    target_tokens: int = 0  # labelled tokens over the kept rows
    lengths: list[int] = field(default_factory=list)  # token count of every input row, before truncation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- reading


def read_records(path: Path) -> list[dict]:
    """Every row of a dataset file as a dict; .txt gives one {"text": paragraph} per blank-line block."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError(f"{path.name} has the unsupported extension '{suffix}': save it as {', '.join(EXTENSIONS)}.")
    if not path.is_file():
        raise DataError(f"{path} does not exist: check data.path.")
    if suffix == ".parquet":
        records = _read_parquet(path)
    else:
        text = _decode(path)
        if not text.strip():
            raise DataError(f"{path.name} is empty: add at least one row.")
        readers = {".json": _parse_json, ".jsonl": _parse_jsonl, ".csv": _parse_csv, ".txt": _parse_txt}
        records = readers[suffix](text, path.name)
    if not records:
        raise DataError(f"{path.name} has no rows: add at least one row.")
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise DataError(
                f"{path.name} row {number} is a {kind}, not an object: write each row as {{\"column\": value}}."
            )
    return records


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise DataError(
            f"{path.name} is not UTF-8 text (byte 0x{byte:02x} on line {line}): re-save the file with UTF-8 encoding."
        ) from None


def _parse_json(text: str, name: str) -> list:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":
            hint = "it looks like JSON Lines, so rename it to .jsonl"
        else:
            hint = "fix the syntax, or save one object per line as .jsonl"
        raise DataError(
            f"{name} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}): {hint}."
        ) from None
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        kind = type(value).__name__
        raise DataError(
            f"{name} holds a JSON {kind}, not a list of rows: put the rows in a list or under a 'data' key."
        )
    return value


def _parse_jsonl(text: str, name: str) -> list:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(
                f"{name} line {number} is not valid JSON ({error.msg} at column {error.colno}): "
                "write exactly one JSON object per line."
            ) from None
    return records


def _parse_csv(text: str, name: str) -> list:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        records = list(reader)
    except csv.Error as error:
        raise DataError(f"{name} is not valid CSV ({error}): check its quoting.") from None
    for number, record in enumerate(records, 1):
        if None in record:
            raise DataError(
                f"{name} row {number} has more fields than the header: quote fields that contain commas."
            )
    return records


def _parse_txt(text: str, name: str) -> list:  # noqa: ARG001 (same signature as the other readers)
    return [{"text": block.strip()} for block in re.split(r"\n\s*\n", text) if block.strip()]


def _read_parquet(path: Path) -> list:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as error:
        reason = type(error).__name__
        raise DataError(f"{path.name} is not a readable Parquet file ({reason}): re-export it as Parquet.") from None


# ---------------------------------------------------------------------------------------------- formats


def apply_columns(records: list[dict], columns: dict[str, str], name: str) -> list[dict]:
    """Rename the file's columns to standard names: {"prompt": "question"} uses "question" as "prompt"."""
    if not columns:
        return records
    for standard, source in columns.items():
        if standard not in STANDARD_COLUMNS:
            raise DataError(
                f"{name}: data.columns names '{standard}', which is not a standard column: "
                f"use one of {', '.join(STANDARD_COLUMNS)}."
            )
        if source not in records[0]:
            raise DataError(
                f"{name} has no column '{source}' to use as '{standard}' (found: {', '.join(records[0])}): "
                "fix data.columns."
            )
    renamed = []
    for record in records:
        out = {key: value for key, value in record.items() if key not in columns.values()}
        out.update({standard: record[source] for standard, source in columns.items() if source in record})
        renamed.append(out)
    return renamed


def _row_format(record: dict) -> str | None:
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        turns = record["messages"]
        first = turns[0] if isinstance(turns, list) and turns else None
        return "sharegpt" if isinstance(first, dict) and "from" in first else "openai"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "prompt" in record and ("completion" in record or "response" in record):
        return "prompt_completion"
    if "text" in record:
        return "text"
    return None


def detect_format(records: list[dict], path: Path) -> str:
    """The one format every row follows; DataError names the first row that does not fit."""
    name = Path(path).name
    first = _row_format(records[0])
    if first is None:
        raise DataError(
            f"{name} row 1 has the columns {', '.join(map(str, records[0])) or '(none)'}, which match no format "
            f"(expected {EXPECTED}): rename the columns or map them with data.columns."
        )
    for number, record in enumerate(records[1:], 2):
        kind = _row_format(record)
        if kind is None:
            _check_fields(record, first, name, number)
        if kind != first:
            raise DataError(
                f"{name} row {number} looks like {kind} while row 1 was {first}: use one format for all rows."
            )
    return first


def _check_fields(record: dict, fmt: str, name: str, number: int) -> None:
    for group in REQUIRED[fmt]:
        if not any(key in record for key in group):
            raise DataError(
                f"{name} row {number} has no '{group[0]}' field, which the {fmt} format needs "
                f"(found: {', '.join(map(str, record)) or 'none'}): add it or map a column to it with data.columns."
            )


def _text(value: Any, field_name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _RowError(field_name, f"is a {type(value).__name__}: write it as text")


def _required(record: dict, key: str, what: str) -> str:
    value = _text(record.get(key), key)
    if not value.strip():
        raise _RowError(key, f"is empty: write {what}, or remove the row")
    return value


def _with_system(record: dict, turns: Messages) -> dict:
    system = _text(record.get("system"), "system")
    return {"messages": ([{"role": "system", "content": system}] if system.strip() else []) + turns}


def _alpaca(record: dict) -> dict:
    instruction = _text(record.get("instruction"), "instruction")
    extra = _text(record.get("input"), "input")
    prompt = "\n\n".join(part for part in (instruction, extra) if part.strip())
    if not prompt:
        raise _RowError("instruction", "is empty: write the instruction the model should follow, or remove the row")
    turns = _history(record.get("history"))
    turns += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": _required(record, "output", "the answer the model should learn")},
    ]
    return _with_system(record, turns)


def _history(value: Any) -> Messages:
    if value is None or value == "" or (isinstance(value, list) and not value):
        return []
    if not isinstance(value, list):
        raise _RowError("history", "must be a list of [user, assistant] pairs")
    turns: Messages = []
    for index, pair in enumerate(value):
        where = f"history[{index}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _RowError(where, "must be a [user, assistant] pair")
        user, reply = _text(pair[0], where), _text(pair[1], where)
        if not user.strip() or not reply.strip():
            raise _RowError(where, "has an empty turn: write both the user message and the reply")
        turns += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return turns


def _prompt_completion(record: dict) -> dict:
    target = "completion" if "completion" in record else "response"
    turns = [
        {"role": "user", "content": _required(record, "prompt", "the prompt")},
        {"role": "assistant", "content": _required(record, target, "the answer the model should learn")},
    ]
    return _with_system(record, turns)


def _plain_text(record: dict) -> dict:
    return {"text": _required(record, "text", "the text to train on")}


def _conversation(record: dict) -> dict:
    key = "conversations" if "conversations" in record else "messages"
    turns = record[key]
    if not isinstance(turns, list) or not turns:
        raise _RowError(key, "must be a non-empty list of turns")
    try:
        messages = [_turn(turn, f"{key}[{index}]") for index, turn in enumerate(turns)]
        tools = parse_tools(record["tools"]) if "tools" in record else None
    except ToolDataError as error:
        raise _RowError(error.field_name, error.problem) from None
    row = _check_turns(link_tool_results(_with_system(record, messages)["messages"]), key)
    return row if tools is None else {**row, "tools": tools}


def _turn(turn: Any, where: str) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise _RowError(where, 'must be an object like {"role": "user", "content": "..."}')
    role_key = "from" if "from" in turn else "role"
    content_key = "value" if "value" in turn else "content"
    written = str(turn.get(role_key, "")).lower()
    role = ROLES.get(written)
    if role is None:
        raise _RowError(f"{where}.{role_key}", f"is {turn.get(role_key)!r}: use user/human, assistant/gpt, system, "
                                               "function_call, observation or tool")
    if written == "function_call":
        return {"role": "assistant", "content": "", "tool_calls": calls_from_sharegpt(turn.get(content_key),
                                                                                       f"{where}.{content_key}")}
    content = turn.get(content_key)
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    content = _text(content, f"{where}.{content_key}")
    calls_key = next((key for key in ("tool_calls", "function_call") if turn.get(key)), None)
    if role == "assistant" and calls_key:
        calls = calls_from_openai(turn[calls_key], f"{where}.{calls_key}")
        return {"role": role, "content": content, "tool_calls": calls}
    if role == "tool":
        link = {key: str(turn[key]) for key in ("tool_call_id", "name") if turn.get(key)}
        return {"role": role, "content": content, **link}
    if role == "assistant" and not content.strip():
        raise _RowError(f"{where}.{content_key}", "is an empty assistant turn: write the reply, or remove the turn")
    reasoning_key = next((key for key in REASONING_KEYS if turn.get(key) not in (None, "")), None)
    if role != "assistant" or reasoning_key is None:
        return {"role": role, "content": content}
    reasoning = _text(turn[reasoning_key], f"{where}.{reasoning_key}")
    return {"role": role, "content": content, "reasoning_content": reasoning}


def _check_turns(messages: Messages, key: str) -> dict:
    roles = [message["role"] for message in messages]
    if "system" in roles[1:]:
        raise _RowError(key, "has a system turn after the first turn: move it to the start")
    dialogue = messages[1:] if roles[0] == "system" else messages
    if not dialogue or dialogue[0]["role"] != "user":
        raise _RowError(key, "must start with a user turn (after an optional system turn)")
    for index, message in enumerate(dialogue[1:], 1):
        before = dialogue[index - 1]
        if message["role"] == "tool" and not (before.get("tool_calls") or before["role"] == "tool"):
            raise _RowError(key, f"has a tool result (turn {index + 1 + len(messages) - len(dialogue)}) that follows "
                                 "no tool call: put each observation/tool turn right after its function_call")
    if dialogue[-1]["role"] != "assistant":
        raise _RowError(key, "ends with a user turn: end each conversation with the assistant's reply")
    return {"messages": messages}


NORMALISERS = {
    "alpaca": _alpaca,
    "sharegpt": _conversation,
    "openai": _conversation,
    "prompt_completion": _prompt_completion,
    "text": _plain_text,
}


def load_rows(cfg: DataConfig) -> tuple[list[dict], str]:
    """Read, map columns, detect the format and normalise; returns (rows, format)."""
    _, rows, fmt = _load(cfg)
    return rows, fmt


def _load(cfg: DataConfig) -> tuple[list[dict], list[dict], str]:
    path = Path(cfg.path)
    raw = read_records(path)
    if cfg.max_samples:
        raw = raw[: cfg.max_samples]
    records = apply_columns(raw, cfg.columns, path.name)
    if cfg.format == "auto":
        fmt = detect_format(records, path)
    else:
        fmt = cfg.format
        for number, record in enumerate(records, 1):
            _check_fields(record, fmt, path.name, number)
    rows = []
    for number, record in enumerate(records, 1):
        try:
            rows.append(NORMALISERS[fmt](record))
        except _RowError as error:
            raise DataError(f"{path.name} row {number}: {error}.") from None
    return raw, rows, fmt


# ---------------------------------------------------------------------------------------------- tokens


def ensure_chat_template(tokenizer: Any) -> bool:
    """Install a ChatML template where the tokenizer has none; True when it did. The vocabulary never grows:
    where <|im_start|>/<|im_end|> are not tokens already, turns end with the tokenizer's eos instead."""
    if tokenizer.chat_template:
        return False
    vocab = tokenizer.get_vocab()
    if all(token in vocab for token in SPECIAL_CHATML):
        tokenizer.chat_template = CHATML_TEMPLATE
    elif tokenizer.eos_token is not None:
        tokenizer.chat_template = CHATML_EOS_TEMPLATE
    else:
        raise DataError("The tokenizer has no chat template, no ChatML tokens and no eos token: "
                        "pick a model with a chat template.")
    return True


def ensure_pad_token(tokenizer: Any) -> None:
    """Pad with eos (else unk) where the tokenizer has no pad token; labels of padding are masked anyway."""
    if tokenizer.pad_token is not None:
        return
    fallback = tokenizer.eos_token or tokenizer.unk_token
    if fallback is None:
        raise ValueError("The tokenizer has no pad, eos or unk token: set tokenizer.pad_token before training.")
    tokenizer.pad_token = fallback


def chat_spans(
    messages: Messages, tokenizer: Any, source: str, number: int, tools: list[dict] | None = None
) -> tuple[str, list[Span]]:
    """render_with_spans (engine/masking.py), with a problem turned into a DataError naming the row and turn."""
    try:
        return render_with_spans(messages, tokenizer, tools)
    except MaskingError as error:
        turn = f", turn {error.turn}" if error.turn is not None else ""
        raise DataError(f"{source} row {number}{turn}: {error.problem}") from None


def template_notes(rows: list[dict], tokenizer: Any) -> list[str]:
    """Sentences for the run log on how the rows were fitted to the chat template (a system prompt folded into
    a user turn, reasoning written as <think>...</think>); empty when the template takes them as they are."""
    conversations = [row["messages"] for row in rows if "messages" in row]
    return masking_notes(conversations, tokenizer, with_tools=any(row.get("tools") for row in rows))


def _label_chat(row: dict, tokenizer: Any, source: str, number: int) -> tuple[list[int], list[int]]:
    text, spans = chat_spans(row["messages"], tokenizer, source, number, row.get("tools"))
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = list(encoding["input_ids"])
    labels = []
    for token_id, (start, end) in zip(ids, encoding["offset_mapping"], strict=True):
        # a token that overlaps a reply is trained: byte-level BPE folds the leading space into the token
        inside = any(end > span_start and start < span_end for span_start, span_end in spans)
        labels.append(token_id if inside else IGNORE_INDEX)
    return ids, labels


def _label_text(text: str, tokenizer: Any) -> tuple[list[int], list[int]]:
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
    return ids, list(ids)


def tokenize_rows(
    rows: list[dict], tokenizer: Any, cutoff_len: int, overlength: str, *, source: str = "dataset"
) -> tuple[list[dict], TokenStats]:
    """Token ids and labels (-100 outside assistant replies) per row, cut or dropped at cutoff_len."""
    if overlength not in ("truncate", "drop"):
        raise ValueError(f"overlength must be 'truncate' or 'drop', not {overlength!r}.")
    if any("messages" in row for row in rows[:1]) and not tokenizer.chat_template:
        raise ValueError("The tokenizer has no chat template: call ensure_chat_template(tokenizer) first.")
    stats = TokenStats(rows_in=len(rows))
    out = []
    for number, row in enumerate(rows, 1):
        ids, labels = _label_row(row, tokenizer, source, number)
        stats.lengths.append(len(ids))
        cut = len(ids) > cutoff_len
        if cut and overlength == "drop":
            stats.dropped += 1
            continue
        ids, labels = ids[:cutoff_len], labels[:cutoff_len]
        targets = sum(label != IGNORE_INDEX for label in labels)
        if targets == 0:
            stats.dropped += 1
            continue
        stats.truncated += cut
        stats.target_tokens += targets
        out.append({"input_ids": ids, "labels": labels})
    stats.rows_out = len(out)
    return out, stats


def _label_row(row: dict, tokenizer: Any, source: str, number: int) -> tuple[list[int], list[int]]:
    if "text" in row:
        return _label_text(row["text"], tokenizer)
    return _label_chat(row, tokenizer, source, number)


def build_splits(cfg: RunConfig, tokenizer: Any) -> tuple[list[dict], list[dict], TokenStats]:
    """Tokenized train and validation rows, split by data.val_size with train.seed; val is empty at 0.

    The caller installs the chat template first (ensure_chat_template), since it may have to resize embeddings.
    """
    rows, _ = load_rows(cfg.data)
    name = Path(cfg.data.path).name
    tokenized, stats = tokenize_rows(rows, tokenizer, cfg.train.cutoff_len, cfg.data.overlength, source=name)
    if not tokenized:
        raise DataError(
            f"{name} has no row left with a token to train on after cutoff_len={cfg.train.cutoff_len}: "
            "raise train.cutoff_len or set data.overlength to truncate."
        )
    if cfg.data.val_size == 0:
        return tokenized, [], stats
    n_val = max(1, round(len(tokenized) * cfg.data.val_size))
    if n_val >= len(tokenized):
        raise DataError(
            f"{name} has only {len(tokenized)} usable rows, too few to hold out val_size={cfg.data.val_size}: "
            "lower data.val_size or add rows."
        )
    order = list(range(len(tokenized)))
    random.Random(cfg.train.seed).shuffle(order)
    val_ids = set(order[:n_val])
    train = [row for index, row in enumerate(tokenized) if index not in val_ids]
    val = [tokenized[index] for index in sorted(val_ids)]
    return train, val, stats


# ---------------------------------------------------------------------------------------------- inspect


def inspect_dataset(data_cfg: DataConfig, tokenizer: Any = None, cutoff_len: int = 512) -> dict[str, Any]:
    """What the web UI shows about a dataset: format, size, columns, a preview, and token lengths.

    With a tokenizer that has no chat template, ChatML is installed on it (ensure_chat_template).
    """
    raw, rows, fmt = _load(data_cfg)
    columns: dict[str, None] = {}
    for record in raw:
        columns.update(dict.fromkeys(map(str, record)))
    report: dict[str, Any] = {
        "format": fmt,
        "rows": len(rows),
        "columns": list(columns),
        "preview": raw[:PREVIEW_ROWS],
        "overlength": data_cfg.overlength,
    }
    if tokenizer is None:
        return report
    if fmt != "text":
        ensure_chat_template(tokenizer)
    first = rows[0]
    if "text" in first:
        report["example"] = {"text": first["text"], "spans": [[0, len(first["text"])]]}
    else:
        text, spans = chat_spans(first["messages"], tokenizer, Path(data_cfg.path).name, 1, first.get("tools"))
        report["example"] = {"text": text, "spans": [list(span) for span in spans]}
    name = Path(data_cfg.path).name
    _, stats = tokenize_rows(rows, tokenizer, cutoff_len, data_cfg.overlength, source=name)
    report["lengths"] = stats.lengths
    report["over_cutoff"] = sum(length > cutoff_len for length in stats.lengths)
    report["kept"] = stats.rows_out
    report["target_tokens"] = stats.target_tokens
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py inspect-data", description="Detect a dataset file's format and measure it (rows, "
        "a preview, one rendered example with its trained spans, token lengths against --cutoff-len); prints one "
        "JSON object, or one sentence on stderr for a bad file.")
    parser.add_argument("--data", required=True, help="dataset file (.json, .jsonl, .csv, .parquet, .txt)")
    parser.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="default: detect")
    parser.add_argument("--columns", default="{}", help='JSON map of standard to file columns, e.g. {"prompt": "q"}')
    parser.add_argument("--model", help="hub id or local folder whose tokenizer measures token lengths")
    parser.add_argument("--cutoff-len", type=int, default=512, help="token limit per row (default 512)")
    parser.add_argument("--overlength", default="truncate", choices=("truncate", "drop"), help="default: truncate")
    return parser


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, trust_remote_code=False)


def main(argv: list[str]) -> int:
    """`python -m engine inspect-data`: one JSON object on stdout (exit 0), or one sentence on stderr (exit 2)."""
    args = _parser().parse_args(argv)
    try:
        columns = json.loads(args.columns)
    except json.JSONDecodeError as error:
        print(f"--columns is not valid JSON ({error.msg}): pass an object like '{{\"prompt\": \"question\"}}'.",
              file=sys.stderr)  # fmt: skip
        return 2
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        print("--columns must be a JSON object of column names, like '{\"prompt\": \"question\"}'.", file=sys.stderr)
        return 2
    cfg = DataConfig(path=args.data, format=args.format, columns=columns, overlength=args.overlength)
    try:
        tokenizer = _load_tokenizer(args.model) if args.model else None
    except (OSError, ValueError) as error:
        reason = type(error).__name__
        print(f"Cannot load a tokenizer from {args.model} ({reason}): check --model.", file=sys.stderr)
        return 2
    try:
        report = inspect_dataset(cfg, tokenizer, args.cutoff_len)
    except DataError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, default=str))
    return 0
