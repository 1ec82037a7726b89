"""Dataset files -> records: every row of a .json, .jsonl, .csv, .parquet or .txt file as a dict.

Every problem with a file is a DataError whose message is one sentence naming the file (and the line or row
where there is one) and saying what to change. engine/formats.py turns the records into chat messages.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from engine.config import DATA_EXTENSIONS as EXTENSIONS
from engine.failures import DataError


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
