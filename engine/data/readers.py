"""Dataset files -> records: every row of a .json, .jsonl, .csv, .parquet or .txt file as a dict.

Every problem with a file is a DataError whose message is one sentence naming the file (and the line or row
where there is one) and saying what to change. engine/data/formats.py turns the records into chat messages.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from engine.config import DATA_EXTENSIONS as EXTENSIONS
from engine.jobs.failures import DataError
from engine.sentences import said


def dataset_file(path: Path) -> tuple[Path, str]:
    """(path, lower-case suffix) of a dataset file that exists and has a supported extension; DataError otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError(said("engine.data.bad_extension", name=path.name, suffix=suffix,
                             extensions=", ".join(EXTENSIONS)))
    if not path.is_file():
        raise DataError(said("engine.data.missing", path=str(path)))
    return path, suffix


def read_records(path: Path) -> list[dict]:
    """Every row of a dataset file as a dict; .txt gives one {"text": paragraph} per blank-line block."""
    path, suffix = dataset_file(path)
    if suffix == ".parquet":
        records = _read_parquet(path)
    else:
        text = _decode(path)
        if not text.strip():
            raise DataError(said("engine.data.empty", name=path.name))
        readers = {".json": _parse_json, ".jsonl": _parse_jsonl, ".csv": _parse_csv, ".txt": _parse_txt}
        records = readers[suffix](text, path.name)
    if not records:
        raise DataError(said("engine.data.no_rows", name=path.name))
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise not_an_object(path.name, number, record)
    return records


# One sentence per problem, shared with the bounded reading of engine/data/sample.py.


def not_utf8(name: str, byte: int, line: int) -> DataError:
    return DataError(said("engine.data.not_utf8", name=name, byte=f"{byte:02x}", line=line))


def not_json(name: str, msg: str, line: int, column: int) -> DataError:
    """The whole file (a .json) does not parse."""
    hint = said("engine.data.hint_jsonl") if msg == "Extra data" else said("engine.data.hint_syntax")
    return DataError(said("engine.data.not_json", name=name, reason=msg, line=line, column=column, hint=hint))


def not_a_list(name: str, value: object) -> DataError:
    kind = type(value).__name__
    return DataError(said("engine.data.not_a_list", name=name, kind=kind))


def bad_jsonl_line(name: str, number: int, error: json.JSONDecodeError) -> DataError:
    return DataError(said("engine.data.bad_jsonl_line", name=name, number=number, reason=error.msg,
                          column=error.colno))


def too_deep(name: str, where: str = "") -> DataError:
    """A row (`where`: "line 3", "row 3"; "" for the whole file) whose lists or objects nest deeper than Python's
    JSON reader goes (its recursion limit)."""
    subject = f"{name} {where}" if where else name
    return DataError(f"{subject} nests its JSON lists or objects too deeply to be read (thousands of levels): "
                     f"flatten {'that row' if where else 'its rows'}.")


def bad_csv(name: str, error: csv.Error) -> DataError:
    return DataError(said("engine.data.bad_csv", name=name, reason=str(error)))


def extra_csv_fields(name: str, number: int) -> DataError:
    return DataError(said("engine.data.extra_csv_fields", name=name, number=number))


def not_an_object(name: str, number: int, record: object) -> DataError:
    kind = type(record).__name__
    return DataError(said("engine.data.not_an_object", name=name, number=number, kind=kind))


def bad_parquet(name: str, error: Exception) -> DataError:
    return DataError(said("engine.data.bad_parquet", name=name, reason=type(error).__name__))


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise not_utf8(path.name, data[error.start], data[: error.start].count(b"\n") + 1) from None


def _parse_json(text: str, name: str) -> list:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise not_json(name, error.msg, error.lineno, error.colno) from None
    except RecursionError:
        raise too_deep(name) from None
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise not_a_list(name, value)
    return value


LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _parse_jsonl(text: str, name: str) -> list:
    records = []
    # Only \n and \r end a line: a JSON string cannot hold them raw, but it may hold U+2028, U+0085 and the other
    # characters str.splitlines() also breaks on (json.dumps(..., ensure_ascii=False) writes them as they are).
    for number, line in enumerate(LINE_BREAK.split(text), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise bad_jsonl_line(name, number, error) from None
        except RecursionError:
            raise too_deep(name, f"line {number}") from None
    return records


def _parse_csv(text: str, name: str) -> list:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        records = list(reader)
    except csv.Error as error:
        raise bad_csv(name, error) from None
    for number, record in enumerate(records, 1):
        if None in record:
            raise extra_csv_fields(name, number)
    return records


def _parse_txt(text: str, name: str) -> list:  # noqa: ARG001 (same signature as the other readers)
    return [{"text": block.strip()} for block in re.split(r"\n\s*\n", text) if block.strip()]


def _read_parquet(path: Path) -> list:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise bad_parquet(path.name, error) from None
