"""Padding-free packing must compute the loss over exactly the same target tokens as padded batches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from engine.train.batching import first_fit
from engine.train.collate import IGNORE, REAL_TOKENS, PackingCollator, PaddingCollator

ROWS = [
    {"input_ids": [5, 6, 7, 8, 9], "labels": [IGNORE, IGNORE, 7, 8, 9]},
    {"input_ids": [10, 11, 12], "labels": [IGNORE, 11, 12]},
    {"input_ids": [13, 14, 15, 16, 17, 18, 19], "labels": [IGNORE, IGNORE, IGNORE, 16, 17, 18, 19]},
]


def model_inputs(batch: dict) -> dict:
    """A collated batch as the model receives it (the Trainer takes the token count out first)."""
    batch.pop(REAL_TOKENS, None)
    return batch


def per_token_losses(model, batch) -> torch.Tensor:
    """Loss of every target token, in order, as the model's shifted cross-entropy computes it."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    logits, labels = logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten()
    keep = labels != IGNORE
    return F.cross_entropy(logits[keep], labels[keep], reduction="none")


def test_packed_batch_has_no_padding_and_restarting_positions():
    batch = PackingCollator()(ROWS)
    assert batch.pop(REAL_TOKENS) == 15 and batch["input_ids"].shape == (1, 15)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6]]
    assert "attention_mask" not in batch  # transformers detects packed sequences only without one


def test_packing_gives_the_same_per_token_loss_as_padding(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model).train()  # dropout is 0: train mode is deterministic
    padded = per_token_losses(model, PaddingCollator(pad_token_id=3)(ROWS))
    packed = per_token_losses(model, model_inputs(PackingCollator()(ROWS)))
    assert padded.numel() == 9
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-5)
    # and the model's own loss (what the Trainer optimises) is the mean over the same 9 target tokens
    with torch.no_grad():
        packed = model(**model_inputs(PackingCollator()(ROWS))).loss
        torch.testing.assert_close(packed, padded.mean(), rtol=1e-4, atol=1e-5)


def test_cross_example_attention_would_change_the_loss(tiny_model):
    """The check above can fail: without restarting positions, examples see each other."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model).train()  # dropout is 0: train mode is deterministic
    padded = per_token_losses(model, PaddingCollator(pad_token_id=3)(ROWS))
    batch = model_inputs(PackingCollator()(ROWS))
    batch["use_cache"] = True  # the model's default: a KV cache hides the packed sequences from the mask
    assert not torch.allclose(per_token_losses(model, batch), padded, rtol=1e-4, atol=1e-5)
    batch = model_inputs(PackingCollator()(ROWS))
    batch["position_ids"] = torch.arange(batch["input_ids"].shape[1])[None]
    assert not torch.allclose(per_token_losses(model, batch), padded, rtol=1e-4, atol=1e-5)


def test_first_fit_packs_longest_first_into_bounded_rows():
    assert first_fit([5, 3, 7, 2, 6], 10) == [[2, 1], [4, 3], [0]]  # 7+3, 6+2, 5: each into the first that fits
    assert first_fit([12, 3], 10) == [[0], [1]]  # a row over the bound gets a row of its own
    assert first_fit([5, 3], None) == [[0, 1]]


def test_bounded_packing_rows_and_padding():
    batch = PackingCollator(pad_token_id=3, pack_len=8)(ROWS)  # lengths 5, 3, 7: rows [7] and [5, 3]
    assert batch["input_ids"].shape == (2, 8) and batch[REAL_TOKENS] == 15
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 6, 0], [0, 1, 2, 3, 4, 0, 1, 2]]
    assert batch["input_ids"][0, -1] == 3 and batch["labels"][0, -1] == IGNORE  # padding: its own sequence


def test_bounded_packing_gives_the_same_per_token_loss_as_padding(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model).train()
    padded = per_token_losses(model, PaddingCollator(pad_token_id=3)(ROWS))
    batch = PackingCollator(pad_token_id=3, pack_len=8)(ROWS)
    batch.pop(REAL_TOKENS)
    packed = per_token_losses(model, batch)
    assert packed.numel() == padded.numel() == 9
    torch.testing.assert_close(packed.sort().values, padded.sort().values, rtol=1e-4, atol=1e-5)  # rows reordered
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).loss, padded.mean(), rtol=1e-4, atol=1e-5)
