"""Padding-free packing must compute the loss over exactly the same target tokens as padded batches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from engine.collate import IGNORE, PackingCollator, PaddingCollator

ROWS = [
    {"input_ids": [5, 6, 7, 8, 9], "labels": [IGNORE, IGNORE, 7, 8, 9]},
    {"input_ids": [10, 11, 12], "labels": [IGNORE, 11, 12]},
    {"input_ids": [13, 14, 15, 16, 17, 18, 19], "labels": [IGNORE, IGNORE, IGNORE, 16, 17, 18, 19]},
]


def per_token_losses(model, batch) -> torch.Tensor:
    """Loss of every target token, in order, as the model's shifted cross-entropy computes it."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    logits, labels = logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten()
    keep = labels != IGNORE
    return F.cross_entropy(logits[keep], labels[keep], reduction="none")


def test_packed_batch_has_no_padding_and_restarting_positions():
    batch = PackingCollator()(ROWS)
    assert batch["input_ids"].shape == (1, 15)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6]]
    assert "attention_mask" not in batch  # transformers detects packed sequences only without one


def test_packing_gives_the_same_per_token_loss_as_padding(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model).train()  # dropout is 0: train mode is deterministic
    padded = per_token_losses(model, PaddingCollator(pad_token_id=3)(ROWS))
    packed = per_token_losses(model, PackingCollator()(ROWS))
    assert padded.numel() == 9
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-5)
    # and the model's own loss (what the Trainer optimises) is the mean over the same 9 target tokens
    with torch.no_grad():
        torch.testing.assert_close(model(**PackingCollator()(ROWS)).loss, padded.mean(), rtol=1e-4, atol=1e-5)


def test_cross_example_attention_would_change_the_loss(tiny_model):
    """The check above can fail: without restarting positions, examples see each other."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model).train()  # dropout is 0: train mode is deterministic
    padded = per_token_losses(model, PaddingCollator(pad_token_id=3)(ROWS))
    batch = PackingCollator()(ROWS)
    batch["use_cache"] = True  # the model's default: a KV cache hides the packed sequences from the mask
    assert not torch.allclose(per_token_losses(model, batch), padded, rtol=1e-4, atol=1e-5)
    batch = PackingCollator()(ROWS)
    batch["position_ids"] = torch.arange(batch["input_ids"].shape[1])[None]
    assert not torch.allclose(per_token_losses(model, batch), padded, rtol=1e-4, atol=1e-5)
