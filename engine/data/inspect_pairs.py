"""What the inspection shows of a preference file: the pair format, its rows, a preview, one pair rendered through
the chat template with the chosen and the rejected reply side by side (each with its trained span), and the token
lengths a preference run measures (prompt + its longer reply), against cutoff_len.

The rendering is the one a run trains on: each side is the conversation (prompt turns + that reply) rendered and
labelled by the engine's templating (engine.data.tokens.chat_spans, as SFT and engine.data.preference render it);
its trained span is the reply's (the last one), as render_side keeps it. KTO's rows (prompt, completion, label)
show one reply, marked good or bad. Its `{{name}}` placeholders are found over the prompt and the replies of each
row, and the preview, the rendered pair and the lengths show them filled where data.replace names them (as the
SFT inspection does). Other files are engine.data.pipeline.inspect_dataset's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.config import DataConfig
from engine.data.pipeline import (
    EXAMPLE_CHARS,
    PREVIEW_CHARS,
    PREVIEW_ROWS,
    SampleRows,
    clip,
    clipped_example,
    cut_at,
)
from engine.data.placeholders import fill_known, find_placeholders
from engine.data.preference import (
    PAIR_COLUMNS,
    SIDES,
    is_pair,
    normalise_pairs,
    pair_columns,
    pair_shape,
    tokenize_pairs,
)
from engine.data.sample import Sample
from engine.data.tokens import chat_spans, ensure_chat_template
from engine.data.unpaired import FORMAT as KTO_FORMAT
from engine.data.unpaired import is_unpaired, normalise_unpaired, tokenize_unpaired


def is_preference_file(sample: Sample) -> bool:
    """Whether a file's first row is a preference pair or a KTO row (what a preference stage reads)."""
    return bool(sample.records) and (is_pair(sample.records[0]) or is_unpaired(sample.records[0]))


def with_pair_columns(cfg: DataConfig, sample: Sample) -> Sample | None:
    """The sample with data.columns applied as a preference run applies them, where that makes it a preference
    file (its columns mapped to chosen / rejected, or to completion / label); None where it is none."""
    if not cfg.columns or not sample.records or not set(cfg.columns) <= set(PAIR_COLUMNS):
        return sample if is_preference_file(sample) else None
    mapped = replace(sample, records=pair_columns(sample.records, cfg.columns, Path(cfg.path).name))
    return mapped if is_preference_file(mapped) else None


def inspect_preference(cfg: DataConfig, sample: Sample, tokenizer: Any = None, cutoff_len: int = 512) -> dict[str, Any]:
    """The inspection report of a preference file (DataError naming the file, row and field for a bad row)."""
    read = preference_rows(cfg, sample)
    return read.report if tokenizer is None else measure_preference(read, tokenizer, cutoff_len)


def preference_rows(cfg: DataConfig, sample: Sample) -> SampleRows:
    """The pairs (or KTO rows) normalised, once, and the report that needs no tokenizer (DataError for a bad row,
    before a tokenizer is loaded)."""
    raw, name = sample.records, Path(cfg.path).name
    unpaired = is_unpaired(raw[0])
    rows = normalise_unpaired(raw, name) if unpaired else normalise_pairs(raw, name)
    replies = ("completion",) if unpaired else SIDES
    found = find_placeholders([{"messages": [*row["messages"], *(row[key] for key in replies)]} for row in rows])
    rows = fill_known(rows, cfg.replace)
    columns: dict[str, None] = {}
    for record in raw:
        columns.update(dict.fromkeys(map(str, record)))
    report: dict[str, Any] = {
        "format": KTO_FORMAT if unpaired else pair_shape(raw), "rows": sample.rows,
        "sample_rows": len(raw), "columns": list(columns), "overlength": cfg.overlength, "placeholders": found,
        "preview": [clip(record, PREVIEW_CHARS) for record in fill_known(raw[:PREVIEW_ROWS], cfg.replace)],
    }
    return SampleRows(report, rows, cfg)


def measure_preference(read: SampleRows, tokenizer: Any, cutoff_len: int = 512) -> dict[str, Any]:
    """preference_rows' report with the first pair rendered and every row's token length (a new dict)."""
    report, rows, name = dict(read.report), read.rows, Path(read.data.path).name
    unpaired = report["format"] == KTO_FORMAT
    ensure_chat_template(tokenizer)
    first = rows[0]
    sides = {"completion": first["completion"]} if unpaired else {side: first[side] for side in SIDES}
    report["pair"] = {side: _rendered(first, reply, tokenizer, name, cutoff_len) for side, reply in sides.items()}
    if unpaired:
        report["pair"]["label"] = first["label"]
    tokenize = tokenize_unpaired if unpaired else tokenize_pairs
    _, stats = tokenize(rows, tokenizer, cutoff_len, read.data.overlength, source=name)
    report.update(lengths=stats.lengths, over_cutoff=sum(length > cutoff_len for length in stats.lengths),
                  kept=stats.rows_out, target_tokens=stats.target_tokens)
    return report


def _rendered(row: dict, reply: dict, tokenizer: Any, name: str, cutoff_len: int) -> dict[str, Any]:
    """One side of the first pair: the conversation rendered, with the reply's trained span (the last one)."""
    text, spans = chat_spans([*row["messages"], reply], tokenizer, name, 1, row.get("tools"))
    return clipped_example(text, spans[-1:], EXAMPLE_CHARS, cut_at(text, tokenizer, cutoff_len))
