"""Dataset files the page can use: bundled samples (assets/datasets, read-only) and uploads, which are
moved into WORKSPACE/uploads out of Gradio's upload cache (one copy on disk). Also the pure helpers that turn
an inspect-data report into widgets."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import DATA_EXTENSIONS as SUFFIXES
from webui.jobs.pairs import english_label, listed_pairs
from webui.jobs.paths import PathError, slug

UPLOAD_FOLDER = re.compile(r"[0-9a-f]{32,128}")  # Gradio keeps each upload in a folder named by its hash
MAX_BINS = 12
# bin widths a reader takes in at a glance: 1-2-5 steps, quarters, and powers of two (cutoffs are often 2^n)
NICE_WIDTHS = sorted({m * 10**k for m in (1, 2, 5) for k in range(10)} | {25 * 10**k for k in range(9)}
                     | {2**k for k in range(31)})


def dataset_choices(uploads: Path, assets: Path,
                    pairs_label: Callable[[str, int], str] = english_label) -> list[tuple[str, str]]:
    """(label, absolute path) for every usable file: uploads first (newest first), then the pairs rated in the chat
    with their count (webui/jobs/pairs.py; `pairs_label` writes "NAME · N pairs" in the visitor's language), then
    samples."""
    found: list[tuple[str, str]] = []
    if uploads.is_dir():
        for path in sorted(uploads.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            if path.suffix.lower() in SUFFIXES:
                found.append((f"uploads/{path.name}", str(path.resolve())))
    # rated in the Chat tab
    found += [(label, str(path.resolve())) for label, path, _ in listed_pairs(uploads, pairs_label)]
    samples = assets / "datasets"
    if samples.is_dir():
        for path in sorted(samples.iterdir()):
            if path.suffix.lower() in SUFFIXES:
                found.append((f"samples/{path.name}", str(path.resolve())))
    return found


def listed_as(path: str, listed: list[str]) -> str | None:
    """A job config's dataset as the dataset list names it: the entry naming the same file (a job started from the
    command line names it as its config wrote it, e.g. WORKSPACE/configs/../uploads/test.csv); None where the list
    has no such file."""
    same = [value for value in listed if value == path or Path(value).resolve() == Path(path).resolve()]
    return same[0] if same else None


def store_upload(temp_path: str | Path, uploads: Path, received_in: Path) -> Path:
    """Store a file Gradio received (save_upload) so that it is stored once: moved out of Gradio's upload
    folder `received_in`, and the folder Gradio made for it there removed once empty. A file from anywhere
    else is copied, never moved."""
    source = Path(temp_path)
    received = source.resolve().is_relative_to(received_in.resolve())
    saved = save_upload(source, uploads, move=received)
    if received and UPLOAD_FOLDER.fullmatch(source.parent.name):
        try:
            source.parent.rmdir()
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise  # ENOTEMPTY/EEXIST: a file of another upload with the same bytes landed there meanwhile
    return saved


def save_upload(temp_path: str | Path, uploads: Path, *, move: bool = False) -> Path:
    """Store a file Gradio received in WORKSPACE/uploads under a safe name; the same file uploaded again
    (same name, same bytes) is the stored copy, a different file of that name gets a new name. With `move`,
    the received file is moved there (or deleted, where its bytes are stored already); else it is copied."""
    source = Path(temp_path)
    suffix = source.suffix.lower()
    if suffix not in SUFFIXES:
        raise PathError(f"{source.name} is not a dataset file: use .json, .jsonl, .csv, .parquet or .txt.")
    uploads.mkdir(parents=True, exist_ok=True)
    stem = slug(source.stem, 60)
    stored = stored_copy(source, uploads, stem, suffix)
    if stored is not None:
        if move:
            source.unlink()
        return stored
    target, n = uploads / f"{stem}{suffix}", 1
    while target.exists():
        n += 1
        target = uploads / f"{stem}-{n}{suffix}"
    if move:
        move_file(source, target)
    else:
        shutil.copyfile(source, target)
    return target


def move_file(source: Path, target: Path) -> None:
    """Rename where both are on one filesystem (instant, whatever the size); else copy, then delete."""
    try:
        os.replace(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, target)
        source.unlink()


def stored_copy(source: Path, uploads: Path, stem: str, suffix: str) -> Path | None:
    """The upload already saved as STEM.SUFFIX or STEM-N.SUFFIX with the same bytes as `source`, if any."""
    name = re.compile(re.escape(stem) + r"(-\d+)?" + re.escape(suffix))
    size = source.stat().st_size
    same_size = [p for p in sorted(uploads.iterdir())
                 if name.fullmatch(p.name) and p.is_file() and p.stat().st_size == size]
    if not same_size:
        return None
    digest = file_digest(source)
    return next((p for p in same_size if file_digest(p) == digest), None)


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def preview_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and string cells of the first raw records (nested values shown as short text)."""
    rows = report.get("preview") or []
    headers = list(report.get("columns") or (list(rows[0]) if rows and isinstance(rows[0], dict) else ["text"]))
    cells = []
    for row in rows:
        record = row if isinstance(row, dict) else {headers[0]: row}
        cells.append([_short(record.get(h, "")) for h in headers])
    return headers, cells


def column_widths(headers: list[str], cells: list[list[str]], low: int = 14, high: int = 60) -> list[str]:
    """Widths of the preview's columns, in percent of the table, after how long their header and cells are (at
    least `low`, at most `high` characters' worth): gradio sizes a column by its first rows, so a column empty
    there (alpaca's `input`) got 32 px and its header printed one letter a line, and a long one ran off the box."""
    weights = []
    for i, header in enumerate(headers):
        values = [len(row[i]) for row in cells if i < len(row)]
        typical = sum(values) / len(values) if values else 0
        weights.append(min(max(len(header) + 8, typical, low), high))  # + the header's padding and menu button
    total = sum(weights) or 1
    return [f"{100 * weight / total:.1f}%" for weight in weights]


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def example_segments(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The rendered example split into (text, label) pieces; trained spans get the label 'trained'. Where
    cutoff_len cuts the row (the example's `cut`), what lies beyond is one piece labelled 'cut': none of it trains."""
    example = report.get("example") or {}
    text, spans = example.get("text", ""), sorted(example.get("spans") or [])
    cut = example.get("cut")
    if isinstance(cut, int) and 0 <= cut < len(text):
        kept = [(start, min(end, cut)) for start, end in spans if start < cut]
        return example_segments({"example": {"text": text[:cut], "spans": kept}}) + [(text[cut:], "cut")]
    pieces: list[tuple[str, str | None]] = []
    cursor = 0
    for start, end in spans:
        if start > cursor:
            pieces.append((text[cursor:start], None))
        pieces.append((text[start:end], "trained"))
        cursor = max(cursor, end)
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


@dataclass(frozen=True)
class LengthBin:
    """Rows whose token count lies in low..high (both included)."""

    low: int
    high: int
    rows: int

    @property
    def label(self) -> str:
        return f"{self.low}–{self.high}" if self.high > self.low else str(self.low)


def length_bins(lengths: list[int], cutoff_len: int, max_bins: int = MAX_BINS) -> list[LengthBin]:
    """Equal-width bins (empty ones included) from the shortest row to the longest, every row in one bin.

    Bins are (end - width, end] with end = cutoff_len + k * width, so cutoff_len is always a bin's upper
    edge: a bin fits entirely (high <= cutoff_len) or is entirely over the cutoff."""
    if not lengths:
        return []
    low, high = min(lengths), max(lengths)
    width = bin_width(low, high, cutoff_len, max_bins)
    first, last = _bin_index(low, cutoff_len, width), _bin_index(high, cutoff_len, width)
    counts = dict.fromkeys(range(first, last + 1), 0)
    for n in lengths:
        counts[_bin_index(n, cutoff_len, width)] += 1
    bins = []
    for k, rows in counts.items():
        end = cutoff_len + k * width
        bins.append(LengthBin(low=max(0, end - width + 1), high=end, rows=rows))
    return bins


def bin_width(low: int, high: int, cutoff_len: int, max_bins: int = MAX_BINS) -> int:
    """The narrowest nice width that covers low..high in at most max_bins bins; a width up to 4x wider is
    taken instead if it divides cutoff_len, so that every bin edge is a round multiple of the width."""
    fitting = [w for w in NICE_WIDTHS if _bin_index(high, cutoff_len, w) - _bin_index(low, cutoff_len, w) < max_bins]
    if not fitting:  # longer rows than any nice width covers: plain equal widths
        return -(-(high - low + 1) // max_bins)
    narrowest = fitting[0]
    dividing = [w for w in fitting if w <= 4 * narrowest and cutoff_len % w == 0]
    return dividing[0] if dividing else narrowest


def _bin_index(n: int, cutoff_len: int, width: int) -> int:
    """k such that cutoff_len + (k - 1) * width < n <= cutoff_len + k * width."""
    return -((cutoff_len - n) // width)


def length_histogram(lengths: list[int], cutoff_len: int, fits: str = "fits",
                     over: str = "over cutoff") -> list[dict[str, Any]]:
    """Rows {tokens, rows, fits} for a stacked bar chart, bins in numeric order: two rows per bin, the bin's
    count under its colour (`fits` or `over`) and 0 under the other, so that the chart's colour scale
    always knows both colours (gradio builds it from the first data it draws) and the sum is the row count."""
    table = []
    for length_bin in length_bins(lengths, cutoff_len):
        is_over = length_bin.low > cutoff_len
        table.append({"tokens": length_bin.label, "rows": 0 if is_over else length_bin.rows, "fits": fits})
        table.append({"tokens": length_bin.label, "rows": length_bin.rows if is_over else 0, "fits": over})
    return table
