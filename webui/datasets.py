"""Dataset files the page can use: bundled samples (assets/datasets, read-only) and uploads, which are
copied into WORKSPACE/uploads. Also the pure helpers that turn an inspect-data report into widgets."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from webui.paths import PathError, slug

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
HISTOGRAM_BINS = 12


def dataset_choices(uploads: Path, assets: Path) -> list[tuple[str, str]]:
    """(label, absolute path) for every usable file: uploads first (newest first), then samples."""
    found: list[tuple[str, str]] = []
    if uploads.is_dir():
        for path in sorted(uploads.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            if path.suffix.lower() in SUFFIXES:
                found.append((f"uploads/{path.name}", str(path.resolve())))
    samples = assets / "datasets"
    if samples.is_dir():
        for path in sorted(samples.iterdir()):
            if path.suffix.lower() in SUFFIXES:
                found.append((f"samples/{path.name}", str(path.resolve())))
    return found


def save_upload(temp_path: str | Path, uploads: Path) -> Path:
    """Copy a file gradio received into WORKSPACE/uploads under a safe, unique name."""
    source = Path(temp_path)
    suffix = source.suffix.lower()
    if suffix not in SUFFIXES:
        raise PathError(f"{source.name} is not a dataset file: use .json, .jsonl, .csv, .parquet or .txt.")
    uploads.mkdir(parents=True, exist_ok=True)
    stem = slug(source.stem, 60)
    target, n = uploads / f"{stem}{suffix}", 1
    while target.exists():
        n += 1
        target = uploads / f"{stem}-{n}{suffix}"
    shutil.copyfile(source, target)
    return target


def preview_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and string cells of the first raw records (nested values shown as short text)."""
    rows = report.get("preview") or []
    headers = list(report.get("columns") or (list(rows[0]) if rows and isinstance(rows[0], dict) else ["text"]))
    cells = []
    for row in rows:
        record = row if isinstance(row, dict) else {headers[0]: row}
        cells.append([_short(record.get(h, "")) for h in headers])
    return headers, cells


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def example_segments(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The rendered example split into (text, label) pieces; trained spans get the label 'trained'."""
    example = report.get("example") or {}
    text, spans = example.get("text", ""), sorted(example.get("spans") or [])
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


def length_histogram(lengths: list[int], cutoff_len: int, bins: int = HISTOGRAM_BINS) -> list[dict[str, Any]]:
    """Rows {tokens, rows, fits} for a bar chart of token lengths; 'fits' says whether a bin passes cutoff."""
    if not lengths:
        return []
    low, high = min(lengths), max(lengths)
    width = max(1, -(-(high - low + 1) // bins))
    counts: dict[int, int] = {}
    for n in lengths:
        start = low + (n - low) // width * width
        counts[start] = counts.get(start, 0) + 1
    return [
        {"tokens": f"{start}-{start + width - 1}", "rows": count,
         "fits": "over cutoff" if start + width - 1 > cutoff_len else "fits"}
        for start, count in sorted(counts.items())
    ]
