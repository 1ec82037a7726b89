"""Batching of tokenized rows ({"input_ids", "labels"}) for the Trainer.

Two collators: `PaddingCollator` pads every row to the longest in the batch (right padding,
labels -100 on padding); `PackingCollator` concatenates the batch into one padding-free row with
position ids restarting per example, which transformers turns into attention that does not cross
example boundaries for Llama-family models. The loss is over the same target tokens either way.

A packed batch also carries `use_cache=False`: transformers looks for packed sequences only when no
KV cache is passed, and models create one by default (config.use_cache) even in training, which
would silently let packed examples attend to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

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


@dataclass
class PackingCollator:
    """One row of all examples back to back; position_ids restart at 0 for each example."""

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        input_ids: list[int] = []
        labels: list[int] = []
        position_ids: list[int] = []
        for row in rows:
            n = len(row["input_ids"])
            input_ids += row["input_ids"]
            # The first token of each example has no prediction target from the previous example.
            labels += [IGNORE] + list(row["labels"][1:])
            position_ids += list(range(n))
        return {
            "input_ids": torch.tensor([input_ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([position_ids]),
            "use_cache": False,
        }
