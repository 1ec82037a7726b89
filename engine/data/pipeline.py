"""Dataset file -> chat messages -> token ids with everything but the assistant's words masked.

Contract:
- `load_rows(cfg, seed)` reads every dataset of `cfg.path`: a .json/.jsonl/.csv/.parquet/.txt file
  (engine/data/readers.py), a dataset folder or a hub dataset id (engine/data/sources.py, which also takes each one's
  fraction and mixes them with `seed`). For each it applies its columns, detects (or takes) its format, one of
  alpaca, sharegpt, openai, prompt_completion, text, and it returns rows shaped
  `{"messages": [{"role", "content"}, ...]}` or `{"text": str}` (engine/data/formats.py), with reasoning dropped
  where `cfg.reasoning` is drop (engine/data/reasoning.py) and `{{name}}` placeholders filled from `cfg.replace`
  (engine/data/placeholders.py). It needs no model or tokenizer.
- Every problem with the file is a `DataError` whose message is one sentence naming the file, the first
  bad row (1-based) and the field, and saying what to change.
- `tokenize_rows` renders each conversation with the tokenizer's chat template, tokenizes it once, and
  labels (trains on) only the tokens of the assistant replies as the template writes them, each with the
  template's end-of-turn marker; labels are -100 elsewhere. engine/data/masking.py locates the replies, for
  templates that are not prefix-stable too. Plain text trains on every token, with eos appended.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.config import DataConfig, RunConfig, TrainConfig
from engine.data import formats, sources
from engine.data.masking import template_notes as masking_notes
from engine.data.placeholders import fill_known, fill_placeholders, find_placeholders
from engine.data.reasoning import drop_reasoning
from engine.data.sample import ROW_CHARS, SAMPLE_ROWS
from engine.data.tokens import chat_spans, ensure_chat_template
from engine.jobs.failures import DataError
from engine.sentences import said

IGNORE_INDEX = -100
PREVIEW_ROWS = 5
PREVIEW_CHARS = 1000  # a preview value is cut here (the page shows 160 characters of it)
EXAMPLE_CHARS = 20_000  # the rendered example is cut here: a page need not carry a row of megabytes
DEFAULT_SEED = TrainConfig().seed  # fractions and interleaving are drawn with train.seed


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


def load_rows(cfg: DataConfig, seed: int = DEFAULT_SEED) -> tuple[list[dict], str]:
    """Read, map columns, detect the format and normalise every dataset, then mix them; returns (rows, format),
    the format being each dataset's joined with '+' where they differ (load_datasets has them per dataset)."""
    mixed = load_datasets(cfg, seed)
    return mixed.rows, mixed.format


def load_datasets(cfg: DataConfig, seed: int = DEFAULT_SEED) -> sources.Mixed:
    """Every dataset of data.path loaded (_load), given its share of rows and mixed with `seed`
    (engine/data/sources.py)."""
    return sources.load(cfg, seed, lambda one: _load(one)[1:])


def _load(cfg: DataConfig) -> tuple[list[dict], list[dict], str]:
    raw = sources.read_source(cfg.path, cfg.split)
    if cfg.max_samples:
        raw = raw[: cfg.max_samples]
    rows, fmt = _normalise(raw, cfg)
    return raw, as_trained(rows, cfg), fmt


def as_trained(rows: list[dict], cfg: DataConfig) -> list[dict]:
    """Reasoning dropped (data.reasoning: drop), then placeholders filled (data.replace; DataError if one is not):
    every conversation a run trains on, an SFT row or each side of a preference pair (engine.data.preference)."""
    name = Path(cfg.path).name
    if cfg.reasoning == "drop":
        rows = drop_reasoning(rows, name)
    return fill_placeholders(rows, cfg.replace, name)


def _normalise(raw: list[dict], cfg: DataConfig) -> tuple[list[dict], str]:
    """Map columns, detect (or check) the format, and normalise: (rows, format)."""
    path = Path(cfg.path)
    records = formats.apply_columns(raw, cfg.columns, path.name)
    if cfg.format == "auto":
        fmt = formats.detect_format(records, path)
    else:
        fmt = cfg.format
        formats.check_fields(records, fmt, path.name)
    return formats.normalise(records, fmt, path.name), fmt


# ---------------------------------------------------------------------------------------------- tokens


def template_notes(rows: list[dict], tokenizer: Any) -> list[str]:
    """Sentences for the run log on how the rows were fitted to the chat template (a system prompt folded into
    a user turn, reasoning written as <think>...</think>); empty when the template takes them as they are."""
    conversations = [row["messages"] for row in rows if "messages" in row]
    return masking_notes(conversations, tokenizer, with_tools=any(row.get("tools") for row in rows))


def label_chat(row: dict, tokenizer: Any, source: str, number: int) -> tuple[list[int], list[int]]:
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
    return label_chat(row, tokenizer, source, number)


def build_splits(cfg: RunConfig, tokenizer: Any, mixed: sources.Mixed | None = None
                 ) -> tuple[list[dict], list[dict], TokenStats]:
    """Tokenized train and validation rows, split by data.val_size with train.seed; val is empty at 0.
    `mixed`: the datasets as load_datasets already read them for this config (read here otherwise).

    The caller installs the chat template first (ensure_chat_template), since it may have to resize embeddings.
    """
    name = cfg.data.name
    mixed = mixed or load_datasets(cfg.data, cfg.train.seed)
    tokenized, stats = _tokenize_datasets(mixed, tokenizer, cfg)
    if not tokenized:
        cutoff = cfg.train.cutoff_len
        key = "engine.data.all_dropped" if cfg.data.overlength == "drop" else "engine.data.no_reply_left"
        raise DataError(said(key, name=name, cutoff=cutoff))
    if cfg.data.val_size == 0:
        return tokenized, [], stats
    n_val = max(1, round(len(tokenized) * cfg.data.val_size))
    if n_val >= len(tokenized):
        raise DataError(said("engine.data.too_few_for_val", name=name, rows=len(tokenized), val_size=cfg.data.val_size))
    val_ids = set(validation_indices(len(tokenized), n_val, cfg.train.seed))
    train = [row for index, row in enumerate(tokenized) if index not in val_ids]
    val = [tokenized[index] for index in sorted(val_ids)]
    return train, val, stats


def validation_indices(rows: int, n_val: int, seed: int) -> list[int]:
    """Which of `rows` tokenized rows a run holds out for validation (ascending): the first n_val of them once
    shuffled with train.seed. An evaluation of the run's own validation split (engine/eval) draws the same."""
    order = list(range(rows))
    random.Random(seed).shuffle(order)
    return sorted(order[:n_val])


def usable(row: dict, tokenizer: Any, cutoff_len: int, overlength: str, source: str, number: int) -> bool:
    """Whether training keeps this row (tokenize_rows: not dropped as too long, a token left to train on)."""
    ids, labels = _label_row(row, tokenizer, source, number)
    if len(ids) > cutoff_len and overlength == "drop":
        return False
    return any(label != IGNORE_INDEX for label in labels[:cutoff_len])


def _tokenize_datasets(mixed: sources.Mixed, tokenizer: Any, cfg: RunConfig) -> tuple[list[dict], TokenStats]:
    """Each dataset tokenized under its own name (a bad row is named in its file), then mixed as its rows were."""
    parts, stats = [], TokenStats()
    for part in mixed.parts:
        tokenized, own = tokenize_rows(part.rows, tokenizer, cfg.train.cutoff_len, cfg.data.overlength,
                                       source=part.name)
        parts.append(tokenized)
        for key, value in asdict(own).items():
            setattr(stats, key, getattr(stats, key) + value)
    return sources.mix(parts, mixed.mix, mixed.seed), stats


# ---------------------------------------------------------------------------------------------- inspect


@dataclass
class SampleRows:
    """A sample's rows read and normalised once (inspect_rows): the report that needs no tokenizer, and the rows
    `measure` renders and counts with one."""

    report: dict[str, Any]
    rows: list[dict]  # normalised, with the placeholders data.replace fills filled
    data: DataConfig


def inspect_dataset(data_cfg: DataConfig, tokenizer: Any = None, cutoff_len: int = 512,
                    sample_rows: int = SAMPLE_ROWS, sample: sources.Sample | None = None) -> dict[str, Any]:
    """What the web UI shows about a dataset: format, size, columns, a preview, and token lengths.

    Memory stays bounded whatever the file's size: `rows` counts every row, while the format, columns,
    preview, example and token lengths come from the first `sample_rows` rows (engine/data/sample.py); where
    those are not all the rows, `sample_rows` in the report says how many they are and `note` says so in a
    sentence. With a tokenizer that has no chat template, ChatML is installed on it (ensure_chat_template).
    A caller that refuses a bad file before it loads a tokenizer calls inspect_rows, then measure: each row is
    normalised once.
    """
    read = inspect_rows(data_cfg, sample_rows, sample)
    return read.report if tokenizer is None else measure(read, tokenizer, cutoff_len)


def inspect_rows(data_cfg: DataConfig, sample_rows: int = SAMPLE_ROWS,
                 sample: sources.Sample | None = None) -> SampleRows:
    """The sample's rows normalised (a DataError for a bad row, before any tokenizer is loaded) and the report
    without token lengths: format, size, columns, preview, placeholders."""
    sample = sample or sources.sample_source(data_cfg.path, data_cfg.split, sample_rows)  # or the one read already
    raw = sample.records
    rows, fmt = _normalise(raw, data_cfg)
    columns: dict[str, None] = {}
    for record in raw:
        columns.update(dict.fromkeys(map(str, record)))
    found = find_placeholders(rows)  # {{name}} to fill (data.replace), as found in the sample
    # preview, example and lengths show the rows as they train: with the placeholders data.replace fills filled
    raw, rows = fill_known(raw[:PREVIEW_ROWS], data_cfg.replace), fill_known(rows, data_cfg.replace)
    report: dict[str, Any] = {
        "format": fmt,
        "rows": sample.rows,
        "sample_rows": len(sample.records),
        "columns": list(columns),
        "preview": [clip(record, PREVIEW_CHARS) for record in raw],
        "overlength": data_cfg.overlength,
        "placeholders": found,
    }
    if not sample.complete:
        report["note"] = (f"The format, columns, placeholders, example and token lengths come from the first "
                          f"{len(sample.records):,} of {sample.rows:,} rows.")
    if sample.cut:  # measured on their first megabyte: their lengths are lower bounds
        report["cut_rows"] = sample.cut
        report["note"] = (report.get("note", "") + f" Rows longer than {ROW_CHARS >> 20} MB: {sample.cut:,}, "
                          f"measured on their first {ROW_CHARS >> 20} MB of text (their token lengths are at least "
                          "those shown).").strip()
    return SampleRows(report, rows, data_cfg)


def measure(read: SampleRows, tokenizer: Any, cutoff_len: int = 512) -> dict[str, Any]:
    """inspect_rows' report with the rendered example and the token lengths of its rows (a new dict)."""
    report, rows, name = dict(read.report), read.rows, Path(read.data.path).name
    if report["format"] != "text":
        ensure_chat_template(tokenizer)
    first = rows[0]
    if "text" in first:
        text, spans = first["text"], [(0, len(first["text"]))]
    else:
        text, spans = chat_spans(first["messages"], tokenizer, name, 1, first.get("tools"))
    report["example"] = clipped_example(text, spans, EXAMPLE_CHARS, cut_at(text, tokenizer, cutoff_len))
    _, stats = tokenize_rows(rows, tokenizer, cutoff_len, read.data.overlength, source=name)
    report["lengths"] = stats.lengths
    report["over_cutoff"] = sum(length > cutoff_len for length in stats.lengths)
    report["kept"] = stats.rows_out
    report["target_tokens"] = stats.target_tokens
    return report


def clip(value: Any, limit: int) -> Any:
    """`value` with every string longer than `limit` cut to it (ending in "…"), lists and objects included."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if isinstance(value, list):
        return [clip(item, limit) for item in value]
    if isinstance(value, dict):
        return {key: clip(item, limit) for key, item in value.items()}
    return value


def cut_at(text: str, tokenizer: Any, cutoff_len: int) -> int | None:
    """The character of `text` where cutoff_len cuts it (the start of its first token beyond the cutoff), or None
    where it fits. Counted as label_chat counts a row's tokens (one BOS more or less for a plain-text row)."""
    offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    return int(offsets[cutoff_len][0]) if len(offsets) > cutoff_len else None


def clipped_example(text: str, spans: list[tuple[int, int]], limit: int, cut: int | None = None) -> dict[str, Any]:
    """The rendered example and its trained spans, cut after `limit` characters (then ending in "…"); `cut`, where
    given, is the character where cutoff_len cuts the row (the example says where; nothing after it trains)."""
    clipped = {"cut": cut} if cut is not None and cut < limit else {}
    if len(text) <= limit:
        return {"text": text, "spans": [[start, end] for start, end in spans]} | clipped
    kept = [[start, min(end, limit)] for start, end in spans if start < limit]
    return {"text": text[:limit] + "…", "spans": kept} | clipped
