"""Records -> chat messages: detect which of the five formats a file follows, map its columns, normalise.

Rows come out shaped `{"messages": [{"role", "content"}, ...]}` (with `tools` where the row has them) or
`{"text": str}`. A problem is a DataError naming the file, the first bad row (1-based) and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from engine.config import DataFormat
from engine.config_stage import SFT_COLUMNS, shape_problem
from engine.data.templates import REASONING_FIELDS as REASONING_KEYS  # an assistant turn's reasoning, trained with it
from engine.data.toolcalls import ToolDataError, calls_from_openai, calls_from_sharegpt, link_tool_results, parse_tools
from engine.jobs.failures import DataError
from engine.sentences import Sentence, said

FORMATS: tuple[str, ...] = tuple(name for name in get_args(DataFormat) if name != "auto")
# Fields a row needs, per format: each group lists alternatives, one of which must be present.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "alpaca": (("instruction",), ("output",)),
    "sharegpt": (("conversations", "messages"),),
    "openai": (("messages",),),
    "prompt_completion": (("prompt",), ("completion", "response")),
    "text": (("text",),),
}
STANDARD_COLUMNS = SFT_COLUMNS  # the names data.columns may map an SFT file's columns to
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

Messages = list[dict[str, Any]]


class _RowError(ValueError):
    """A problem inside one row; the caller adds the file name and row number."""

    def __init__(self, field_name: str, problem: str):
        self.field_name = field_name
        self.problem = problem
        super().__init__(f"field '{field_name}' {problem}")


def apply_columns(records: list[dict], columns: dict[str, str], name: str,
                  standard_columns: tuple[str, ...] = STANDARD_COLUMNS) -> list[dict]:
    """Rename the file's columns to standard names: {"prompt": "question"} uses "question" as "prompt"
    (`standard_columns`: the names a mapping may give, the SFT formats' unless a preference file's)."""
    if not columns:
        return records
    for standard, source in columns.items():
        if standard not in standard_columns:
            raise DataError(said("engine.data.not_standard_column", name=name, standard=standard,
                                 columns=", ".join(standard_columns)))
        if source not in records[0]:
            raise DataError(said("engine.data.no_such_column", name=name, source=source, standard=standard,
                                 found=", ".join(records[0]), file_columns=list(map(str, records[0]))))
    # Each mapped column under its standard name where it stood, so the columns keep the file's order (the pages'
    # Columns dropdowns list them back in that order, before and after a pick); a mapped name wins over a column of
    # the file that has that name.
    standards: dict[str, list[str]] = {}
    for standard, source in columns.items():
        standards.setdefault(source, []).append(standard)
    renamed = []
    for record in records:
        out = {standard: value for key, value in record.items() for standard in standards.get(key, [key])}
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


class PreferenceRowsError(DataError):
    """A preference file (pairs or KTO rows) where SFT rows are read; the message is training's sentence, and
    `name` and `shape` ("preference" or "kto") let another reader (an evaluation) say its own."""

    def __init__(self, message: str, name: str, shape: str):
        super().__init__(message)
        self.name, self.shape = name, shape


def preference_shape(record: dict) -> str | None:
    """"kto" for a row of KTO's (completion and label), "preference" for a pair (a chosen or a rejected reply),
    None for any other row: what engine.data.preference and engine.data.unpaired read."""
    if "completion" in record and "label" in record:
        return "kto"
    return "preference" if "chosen" in record or "rejected" in record else None


def detect_format(records: list[dict], path: Path) -> str:
    """The one format every row follows; DataError names the first row that does not fit, PreferenceRowsError
    (training's sentence) a file of pairs or KTO rows."""
    name = Path(path).name
    if shape := preference_shape(records[0]):  # a preference stage's file, read by an sft or pretrain run
        raise PreferenceRowsError(shape_problem("sft", name, shape) or "", name, shape)
    first = _row_format(records[0])
    if first is None:
        raise DataError(said("engine.data.no_format", name=name, columns=", ".join(map(str, records[0])) or "(none)",
                             expected=EXPECTED, file_columns=list(map(str, records[0]))))
    for number, record in enumerate(records[1:], 2):
        kind = _row_format(record)
        if kind is None:
            _check_fields(record, first, name, number)
        if kind != first:
            raise DataError(said("engine.data.mixed_formats", name=name, number=number, kind=kind, first=first))
    return first


def _check_fields(record: dict, fmt: str, name: str, number: int) -> None:
    for group in REQUIRED[fmt]:
        if not any(key in record for key in group):
            raise DataError(said("engine.data.missing_field", name=name, number=number, field=group[0], format=fmt,
                                 found=", ".join(map(str, record)) or "none", file_columns=list(map(str, record))))


def _text(value: Any, field_name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _RowError(field_name, said("engine.row.not_text", kind=type(value).__name__))


def _required(record: dict, key: str, what: Sentence) -> str:
    value = _text(record.get(key), key)
    if not value.strip():
        raise _RowError(key, said("engine.row.empty", what=what))
    return value


def _with_system(record: dict, turns: Messages) -> dict:
    system = _text(record.get("system"), "system")
    return {"messages": ([{"role": "system", "content": system}] if system.strip() else []) + turns}


def _alpaca(record: dict) -> dict:
    instruction = _text(record.get("instruction"), "instruction")
    extra = _text(record.get("input"), "input")
    prompt = "\n\n".join(part for part in (instruction, extra) if part.strip())
    if not prompt:
        raise _RowError("instruction", said("engine.row.empty", what=said("engine.row.instruction")))
    turns = _history(record.get("history"))
    turns += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": _required(record, "output", said("engine.row.answer"))},
    ]
    return _with_system(record, turns)


def _history(value: Any) -> Messages:
    if value is None or value == "" or (isinstance(value, list) and not value):
        return []
    if not isinstance(value, list):
        raise _RowError("history", said("engine.row.bad_history"))
    turns: Messages = []
    for index, pair in enumerate(value):
        where = f"history[{index}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _RowError(where, said("engine.row.not_a_history_pair"))
        user, reply = _text(pair[0], where), _text(pair[1], where)
        if not user.strip() or not reply.strip():
            raise _RowError(where, said("engine.row.empty_history_turn"))
        turns += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return turns


def _prompt_completion(record: dict) -> dict:
    target = "completion" if "completion" in record else "response"
    turns = [
        {"role": "user", "content": _required(record, "prompt", said("engine.row.prompt"))},
        {"role": "assistant", "content": _required(record, target, said("engine.row.answer"))},
    ]
    return _with_system(record, turns)


def _plain_text(record: dict) -> dict:
    return {"text": _required(record, "text", said("engine.row.text"))}


def _conversation(record: dict) -> dict:
    key = "conversations" if "conversations" in record else "messages"
    turns = record[key]
    if not isinstance(turns, list) or not turns:
        raise _RowError(key, said("engine.row.no_turns"))
    try:
        messages = [_turn(turn, f"{key}[{index}]") for index, turn in enumerate(turns)]
        tools = parse_tools(record["tools"]) if "tools" in record else None
    except ToolDataError as error:
        raise _RowError(error.field_name, error.problem) from None
    row = _check_turns(link_tool_results(_with_system(record, messages)["messages"]), key)
    return row if tools is None else {**row, "tools": tools}


def _turn(turn: Any, where: str) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise _RowError(where, said("engine.row.not_a_turn"))
    role_key = "from" if "from" in turn else "role"
    content_key = "value" if "value" in turn else "content"
    written = str(turn.get(role_key, "")).lower()
    role = ROLES.get(written)
    if role is None:
        raise _RowError(f"{where}.{role_key}", said("engine.row.bad_role", role=repr(turn.get(role_key))))
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
        raise _RowError(f"{where}.{content_key}", said("engine.row.empty_reply"))
    reasoning_key = next((key for key in REASONING_KEYS if turn.get(key) not in (None, "")), None)
    if role != "assistant" or reasoning_key is None:
        return {"role": role, "content": content}
    reasoning = _text(turn[reasoning_key], f"{where}.{reasoning_key}")
    return {"role": role, "content": content, "reasoning_content": reasoning}


def _check_turns(messages: Messages, key: str) -> dict:
    roles = [message["role"] for message in messages]
    if "system" in roles[1:]:
        raise _RowError(key, said("engine.row.late_system"))
    dialogue = messages[1:] if roles[0] == "system" else messages
    if not dialogue or dialogue[0]["role"] != "user":
        raise _RowError(key, said("engine.row.user_first"))
    for index, message in enumerate(dialogue[1:], 1):
        before = dialogue[index - 1]
        if message["role"] == "tool" and not (before.get("tool_calls") or before["role"] == "tool"):
            raise _RowError(key, said("engine.row.lone_tool_result", turn=index + 1 + len(messages) - len(dialogue)))
    if dialogue[-1]["role"] != "assistant":
        raise _RowError(key, said("engine.row.ends_with_user"))
    return {"messages": messages}


# One conversation checked as the sharegpt/openai formats check theirs, and the one-row problem it raises: the
# preference formats (engine/data/preference.py) check each side of a pair with them.
conversation = _conversation
RowError = _RowError
row_format = _row_format  # the SFT format of one row (None for none), which the preference formats name

NORMALISERS = {
    "alpaca": _alpaca,
    "sharegpt": _conversation,
    "openai": _conversation,
    "prompt_completion": _prompt_completion,
    "text": _plain_text,
}




def check_fields(records: list[dict], fmt: str, name: str) -> None:
    """Every row has the fields `fmt` needs (for a format given rather than detected)."""
    for number, record in enumerate(records, 1):
        _check_fields(record, fmt, name, number)


def normalise(records: list[dict], fmt: str, name: str) -> list[dict]:
    """Every record in the messages (or text) shape; DataError naming the first row that does not fit."""
    return each_row(records, name, NORMALISERS[fmt])


def each_row(records: list[dict], name: str, parse: Callable[[dict], dict]) -> list[dict]:
    """`parse` of every record; its first RowError as a DataError naming the file and the row (from 1)."""
    rows = []
    for number, record in enumerate(records, 1):
        try:
            rows.append(parse(record))
        except _RowError as error:
            raise DataError(said("engine.data.row", name=name, number=number, field=error.field_name,
                                 problem=error.problem)) from None
    return rows
