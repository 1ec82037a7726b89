"""KTO's rows: one reply each, marked good or bad (`prompt` / `completion` / `label`) -> token ids for KTOTrainer.

Shapes read: `{"prompt": "...", "completion": "...", "label": true}`, with `prompt` a string or a list of turns
and `completion` a string, one turn or a one-turn list (TRL's unpaired shape), an optional `system` and `tools`.
A file of preference pairs (any shape engine/data/preference.py reads) is read too: each pair gives two rows,
its chosen reply marked good and its rejected one bad, as TRL's `unpair_preference_dataset` splits them.
A normalised row is `{"messages": prompt turns, "completion": reply turn, "label": bool}`.

Rendering is engine/data/preference.py's `render_side`: the conversation labelled exactly as SFT labels it, the
reply's trained tokens the completion; KTOTrainer gets `prompt_ids`, `completion_ids` and `label`
(engine/train/preference.py skips its own template and tokenization).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from engine.config import DataConfig, RunConfig
from engine.config_stage import shape_problem
from engine.data import formats, sources
from engine.data.pipeline import TokenStats
from engine.data.preference import (
    SIDES,
    checked_conversation,
    is_pair,
    normalise_pairs,
    pair_columns,
    pair_shape,
    render_side,
    tokenized_mix,
    trained_pairs,
    trained_replies,
)
from engine.jobs.failures import DataError
from engine.sentences import said

FORMAT = "kto"


def is_unpaired(record: dict) -> bool:
    return "completion" in record and "label" in record


def load_unpaired(cfg: DataConfig, seed: int) -> sources.Mixed:
    """Every dataset of data.path read as KTO rows (pairs split in two), given its fraction of rows, mixed."""
    return sources.load(cfg, seed, _load_one)


def _load_one(cfg: DataConfig) -> tuple[list[dict], str]:
    raw = sources.read_source(cfg.path, cfg.split)
    if cfg.max_samples:
        raw = raw[: cfg.max_samples]
    name = Path(cfg.path).name
    raw = pair_columns(raw, cfg.columns, name)
    if raw and is_pair(raw[0]) and not is_unpaired(raw[0]):
        pairs = trained_pairs(normalise_pairs(raw, name), cfg, name)
        rows = [{"messages": pair["messages"], "completion": pair[side], "label": side == "chosen",
                 **({"tools": pair["tools"]} if "tools" in pair else {})} for pair in pairs for side in SIDES]
        return rows, f"{pair_shape(raw)}, split into good and bad replies"
    return trained_replies(normalise_unpaired(raw, name), ("completion",), cfg), FORMAT


def normalise_unpaired(records: list[dict], name: str) -> list[dict]:
    """Every record as a KTO row; DataError naming the first row that is none."""
    if records and not is_unpaired(records[0]) and (shape := formats.row_format(records[0])):
        raise DataError(shape_problem("kto", name, shape))
    if not records or not is_unpaired(records[0]):
        found = ", ".join(map(str, records[0])) if records else "no rows"
        raise DataError(said("engine.data.no_kto_row", name=name, found=found or "(none)"))
    rows = formats.each_row(records, name, _row)
    if len({row["label"] for row in rows}) < 2:
        kind = said("engine.kto.good" if rows[0]["label"] else "engine.kto.bad")
        raise DataError(said("engine.kto.one_label", name=name, kind=kind, label=rows[0]["label"]))
    return rows


def _row(record: dict) -> dict:
    label = record.get("label")
    if not isinstance(label, bool):
        raise formats.RowError("label", said("engine.kto.bad_label", label=repr(label)))
    prompt = record.get("prompt")
    if isinstance(prompt, str) or not prompt:
        if not isinstance(prompt, str) or not prompt.strip():
            raise formats.RowError("prompt", said("engine.kto.empty_prompt"))
        prompt = [{"role": "user", "content": prompt}]
    reply = record["completion"]
    if isinstance(reply, list) and len(reply) == 1:
        reply = reply[0]
    if isinstance(reply, str):
        if not reply.strip():
            raise formats.RowError("completion", said("engine.pair.empty_reply"))
        reply = {"role": "assistant", "content": reply}
    if not isinstance(reply, dict):
        raise formats.RowError("completion", said("engine.kto.bad_reply"))
    extra = {key: record[key] for key in ("system", "tools") if key in record}
    checked = checked_conversation(prompt, reply, "completion", extra)
    row = {"messages": checked["messages"][:-1], "completion": checked["messages"][-1], "label": label}
    return {**row, "tools": checked["tools"]} if "tools" in checked else row


def tokenize_unpaired(rows: list[dict], tokenizer: Any, cutoff_len: int, overlength: str,
                      max_prompt_length: int | None = None, *, source: str = "dataset",
                      ) -> tuple[list[dict], TokenStats]:
    """`{"prompt_ids", "completion_ids", "label"}` per row, cut as engine/data/preference.py cuts a pair."""
    stats = TokenStats(rows_in=len(rows))
    out = []
    for number, row in enumerate(rows, 1):
        prompt, reply = render_side(row, "completion", tokenizer, source, number)
        if max_prompt_length:
            prompt = prompt[-max_prompt_length:]
        length = len(prompt) + len(reply)
        stats.lengths.append(length)
        room = cutoff_len - len(prompt)
        if length > cutoff_len and (overlength == "drop" or room <= 0):
            stats.dropped += 1
            continue
        stats.truncated += length > cutoff_len
        stats.target_tokens += len(reply[:room])
        out.append({"prompt_ids": prompt, "completion_ids": reply[:room], "label": row["label"]})
    stats.rows_out = len(out)
    return out, stats


def unpaired_splits(config: RunConfig, tokenizer: Any, mixed: sources.Mixed) -> tuple[list[dict], list[dict],
                                                                                         TokenStats]:
    """Tokenized train and validation rows (data.val_size held out with train.seed), each shuffled with the seed:
    KTO reads them in order (its KL estimate pairs each row with its batch neighbours), so good and bad replies
    of one pair must not always share a batch in the same places."""
    rows, stats = tokenized_mix(config, tokenizer, mixed, tokenize_unpaired, "row")
    random.Random(config.train.seed).shuffle(rows)
    if not config.data.val_size:
        return rows, [], stats
    held = max(1, round(len(rows) * config.data.val_size))
    if held >= len(rows):
        raise DataError(said("engine.kto.too_few_for_val", name=config.data.name, rows=len(rows),
                             val_size=config.data.val_size))
    return rows[held:], rows[:held], stats
