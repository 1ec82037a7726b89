"""Batching of tokenized rows ({"input_ids", "labels"}) for the Trainer.

Two collators: `PaddingCollator` pads every row to the longest in the batch (right padding,
labels -100 on padding); `PackingCollator` packs the batch's examples into rows of at most `pack_len`
tokens with position ids restarting per example, which transformers turns into attention that does not
cross example boundaries for Llama-family models. The loss is over the same target tokens either way.

A packed batch also carries `use_cache=False`: transformers looks for packed sequences only when no
KV cache is passed, and models create one by default (config.use_cache) even in training, which
would silently let packed examples attend to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.train.batching import first_fit

IGNORE = -100


@dataclass
class PaddingCollator:
    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), longest), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


REAL_TOKENS = "real_tokens"  # a packed batch's count of tokens that are not padding (WorkbenchTrainer reads it)


@dataclass
class PackingCollator:
    """The batch's examples back to back in sequences of at most `pack_len` tokens (first-fit, longest first), one
    sequence per batch row; position_ids restart at 0 for each example, so attention stays inside it. Rows shorter
    than the longest are padded at the end with a sequence of their own (positions from 0, labels ignored).

    Bounding the sequence bounds the attention work: the masked square of a packed row grows with its length
    squared, so a whole batch in one row costs up to batch_size times the attention of padded rows. `pack_len`
    None packs the whole batch into one row."""

    pad_token_id: int = 0
    pack_len: int | None = None

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        bins = first_fit([len(row["input_ids"]) for row in rows], self.pack_len)
        sequences = [self._sequence([rows[i] for i in indices]) for indices in bins]
        longest = max(len(ids) for ids, _, _ in sequences)
        input_ids, labels, positions = [], [], []
        for ids, target, position in sequences:
            pad = longest - len(ids)
            input_ids.append(ids + [self.pad_token_id] * pad)
            labels.append(target + [IGNORE] * pad)
            positions.append(position + list(range(pad)))
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "position_ids": torch.tensor(positions),
            "use_cache": False,
            REAL_TOKENS: sum(len(ids) for ids, _, _ in sequences),
        }

    @staticmethod
    def _sequence(rows: list[dict[str, Any]]) -> tuple[list[int], list[int], list[int]]:
        input_ids: list[int] = []
        labels: list[int] = []
        position_ids: list[int] = []
        for row in rows:
            n = len(row["input_ids"])
            input_ids += row["input_ids"]
            # The first token of each example has no prediction target from the previous example.
            labels += [IGNORE] + list(row["labels"][1:])
            position_ids += list(range(n))
        return input_ids, labels, position_ids
