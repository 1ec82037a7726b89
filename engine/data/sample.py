"""The first rows of a dataset file and its exact row count, in memory that does not grow with the file.

What `python -m engine inspect-data` reads: the first SAMPLE_ROWS rows (fewer where they pass SAMPLE_BYTES of
text) are kept for the preview, the example and the token lengths; every other row is parsed, checked to be
an object, counted and dropped. A row longer than ROW_CHARS is kept with each of its strings cut to ROW_CHARS
characters (its token length is then measured on that much, a lower bound: tokenizing one 50 MB row once took
more than the inspection's 2 GB), and `Sample.cut` counts such rows. Parquet rows are counted from the file's
metadata. Training reads the whole
file (engine/data/readers.py); the error sentences are the same.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.data.readers import (
    bad_csv,
    bad_jsonl_line,
    bad_parquet,
    dataset_file,
    extra_csv_fields,
    not_an_object,
    too_deep,
)
from engine.data.streams import CHUNK_BYTES, MAX_ROW_BYTES, json_items, lines, too_long
from engine.jobs.failures import DataError
from engine.sentences import said

SAMPLE_ROWS = 2000
SAMPLE_BYTES = 16 << 20
ROW_CHARS = 1 << 20  # a longer row is measured on its first ROW_CHARS characters of each string

LONE_CR = re.compile(r"(?<=\r)(?!\n)")
Rows = Iterator[tuple[Any, int]]  # (row, its size in characters of the file's text)


@dataclass(frozen=True)
class Sample:
    records: list[dict]  # the first rows of the file
    rows: int  # every row of the file
    cut: int = 0  # records longer than ROW_CHARS, kept with their strings cut to it

    @property
    def complete(self) -> bool:
        return len(self.records) == self.rows


def read_sample(path: Path, max_rows: int = SAMPLE_ROWS, max_bytes: int = SAMPLE_BYTES) -> Sample:
    """The first `max_rows` rows (stopping after the row that passes `max_bytes` of text) and the row count."""
    path, suffix = dataset_file(path)
    if suffix == ".parquet":
        sample = _parquet_sample(path, max_rows)
    else:
        sample = _take(ROWS[suffix](path), path.name, max_rows, max_bytes)
    if not sample.rows:
        raise DataError(said("engine.data.no_rows", name=path.name))
    return sample


def _take(rows: Rows, name: str, max_rows: int, max_bytes: int) -> Sample:
    records: list[dict] = []
    count = taken = cut = 0
    for record, size in rows:
        count += 1
        if not isinstance(record, dict):
            raise not_an_object(name, count, record)
        if len(records) < max_rows and taken < max_bytes:
            if size > ROW_CHARS:
                record, size, cut = cut_strings(record, ROW_CHARS), ROW_CHARS, cut + 1
            records.append(record)
            taken += size
    return Sample(records, count, cut)


def cut_strings(value: Any, limit: int) -> Any:
    """`value` with every string longer than `limit` cut to its first `limit` characters (lists and objects
    included)."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, list):
        return [cut_strings(item, limit) for item in value]
    if isinstance(value, dict):
        return {key: cut_strings(item, limit) for key, item in value.items()}
    return value


def _jsonl_rows(path: Path) -> Rows:
    blank = True
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        blank = False
        try:
            yield json.loads(line.removesuffix("\n").removesuffix("\r")), len(line)  # columns as splitlines gives
        except json.JSONDecodeError as error:
            raise bad_jsonl_line(path.name, number, error) from None
        except RecursionError:
            raise too_deep(path.name, f"line {number}") from None
    if blank:
        raise DataError(said("engine.data.empty", name=path.name))


def _txt_rows(path: Path) -> Rows:
    """One {"text": paragraph} per block of lines between blank lines (re.split(r"\\n\\s*\\n") of the text)."""
    block: list[str] = []
    size, start, blank = 0, 0, True
    for number, line in enumerate(lines(path), 1):
        if line.strip():
            blank = False
            start = start if block else number
            block.append(line)
            size += len(line)
            if size > MAX_ROW_BYTES:
                raise too_long(path.name, f"paragraph starting on line {start}")
        elif block:
            yield {"text": "".join(block).strip()}, size
            block, size = [], 0
    if block:
        yield {"text": "".join(block).strip()}, size
    if blank:
        raise DataError(said("engine.data.empty", name=path.name))


def _csv_rows(path: Path) -> Rows:
    seen = _Seen(_lines(path))
    reader = csv.DictReader(seen)
    try:
        for number, record in enumerate(reader, 1):
            if None in record:
                raise extra_csv_fields(path.name, number)
            yield record, sum(len(value or "") for value in record.values())
    except csv.Error as error:
        raise bad_csv(path.name, error) from None
    if not seen.text:
        raise DataError(said("engine.data.empty", name=path.name))


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, also where they end in a lone \r (as str.splitlines and csv's newline="" do)."""
    for line in lines(path):
        if "\r" in line:
            yield from (part for part in LONE_CR.split(line) if part)
        else:
            yield line


class _Seen:
    """Lines passed on as they are, noting whether any held more than whitespace."""

    def __init__(self, source: Iterator[str]):
        self.source, self.text = source, False

    def __iter__(self) -> Iterator[str]:
        for line in self.source:
            self.text = self.text or bool(line.strip())
            yield line


def _parquet_sample(path: Path, max_rows: int) -> Sample:
    """The row count from the file's metadata; the first rows read page by page (buffered, not pre-buffered:
    else the whole first row group, often the whole file, is read and decoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path, buffer_size=CHUNK_BYTES, pre_buffer=False)
        rows = parquet.metadata.num_rows
        batch = next(parquet.iter_batches(batch_size=max_rows), None)
        records = batch.to_pylist() if batch is not None else []
    except (pa.ArrowException, OSError) as error:
        raise bad_parquet(path.name, error) from None
    cut = sum(len(str(record)) > ROW_CHARS for record in records[:max_rows])
    return Sample([cut_strings(record, ROW_CHARS) for record in records[:max_rows]], rows, cut)


ROWS = {".jsonl": _jsonl_rows, ".json": json_items, ".txt": _txt_rows, ".csv": _csv_rows}
