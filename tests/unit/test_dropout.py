"""LoRA dropout with masks drawn in bulk (engine.model.dropout): the same distribution and expectation as nn.Dropout,
gradients through the kept elements only, repeatable under a seed, swapped into every LoRA layer. (Its speed is
measured by tests/bench/step_profile.py and the benchmark, not asserted here: timings on a shared machine are noise.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.model.dropout import BulkDropout, use_bulk_dropout


def test_drops_p_of_the_elements_and_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 2.0)
    dropout = BulkDropout(0.1).train()
    y = dropout(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.002
    assert torch.allclose(y[y != 0], torch.tensor(2.0 / 0.9))
    assert abs(y.mean().item() - 2.0) < 0.01


def test_every_lane_of_a_random_word_drops_alike():
    """Four elements share one 64-bit draw: each of the four lanes must drop p of its elements."""
    torch.manual_seed(1)
    y = BulkDropout(0.25).train()(torch.ones(400_000))
    per_lane = (y.view(-1, 4) == 0).float().mean(0)
    assert torch.all((per_lane - 0.25).abs() < 0.005), per_lane


def test_p_is_rounded_to_a_lane_and_scaled_by_what_is_used():
    dropout = BulkDropout(0.05)
    assert dropout.p == round(0.05 * 65536) / 65536
    assert dropout.scale == pytest.approx(1 / (1 - dropout.p))


def test_eval_mode_and_p_zero_pass_the_input_through():
    x = torch.randn(3, 5)
    assert BulkDropout(0.5).eval()(x) is x
    assert BulkDropout(0.0).train()(x) is x


def test_gradient_flows_through_the_kept_elements_only():
    torch.manual_seed(2)
    x = torch.randn(64, 32, requires_grad=True)
    y = BulkDropout(0.3).train()(x)
    y.sum().backward()
    kept = y.detach() != 0
    assert torch.allclose(x.grad[kept], torch.tensor(1 / 0.7), atol=1e-4)  # p = 0.3 rounds to 19661/65536
    assert torch.all(x.grad[~kept] == 0)


def test_a_seed_repeats_the_masks():
    x = torch.randn(128, 64)
    dropout = BulkDropout(0.2).train()
    torch.manual_seed(3)
    first = dropout(x)
    torch.manual_seed(3)
    assert torch.equal(first, dropout(x))
    assert not torch.equal(first, dropout(x))


def lora_model(dropout: float):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(LlamaForCausalLM(config), lora)


def test_every_lora_layer_gets_bulk_dropout():
    model = lora_model(0.05)
    assert use_bulk_dropout(model) == 14  # 7 linear layers in each of 2 decoder layers
    assert not any(type(m) is nn.Dropout and m.p > 0 for m in model.modules())
    assert sum(isinstance(m, BulkDropout) for m in model.modules()) == 14
    model.train()
    ids = torch.randint(0, 64, (2, 9))
    model(input_ids=ids, labels=ids).loss.backward()  # peft's LoRA forward runs through it
    assert use_bulk_dropout(lora_model(0.0)) == 0
