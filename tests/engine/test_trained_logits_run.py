"""A training run with the head and the loss only where labels train (engine/train/logits.py, issue 23) logs the
same loss curve and evaluation loss as the full computation for the same seed (in process, one short run each);
QLoRA 4-bit, whose base bitsandbytes quantizes while loading, gives the full path's loss and gradients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, run_train_in_process, write_rows


def train(tiny_model: Path, data: Path, output: Path) -> tuple[list[float], float, str]:
    """(loss per step, final eval loss, train.log) of a short packed LoRA run."""
    config = parse_config({
        "model": {"name_or_path": str(tiny_model)}, "method": {"name": "lora", "r": 4},
        "data": {"path": str(data), "val_size": 0.25},
        "train": {"max_steps": 5, "batch_size": 4, "learning_rate": 1e-2, "packing": "on", "logging_steps": 1,
                  "save_steps": 50},
        "output_dir": str(output)})
    assert run_train_in_process(config) == 0
    run = RunDir(output)
    events = [json.loads(line) for line in run.events.read_text().splitlines()]
    losses = [e["values"]["loss"] for e in events if e.get("kind") == "metrics" and "loss" in e.get("values", {})]
    return losses, run.read_metrics()["eval_loss"], (output / "train.log").read_text()


def test_the_loss_curve_equals_the_full_computations(tiny_model: Path, tmp_path: Path, monkeypatch):
    data = write_rows(tmp_path / "rows.json", MEMORISE * 4)
    new, new_eval, log = train(tiny_model, data, tmp_path / "trained-only")
    assert "loss: the output head projects only the positions whose next token trains" in log
    assert "; kernels: no Liger Kernel (" in log  # the same line says why Liger's kernels are not used (no CUDA here)
    monkeypatch.setattr("engine.train.trainer.plan", lambda _model: (None, "loss: full logits (the test's)"))
    old, old_eval, log = train(tiny_model, data, tmp_path / "full")
    assert "loss: full logits (the test's)" in log
    assert len(new) == len(old) == 5 and len(set(new)) > 1  # five steps that trained
    assert new == pytest.approx(old, rel=1e-5) and new_eval == pytest.approx(old_eval, rel=1e-5)


def test_qlora_4bit_equals_the_full_loss_and_gradients(tmp_path: Path):
    """QLoRA loads its base quantized (bitsandbytes), so it is built the engine's way, from a saved model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.config import MethodConfig, ModelConfig
    from engine.model.loading import load_model
    from engine.model.methods import apply_method
    from engine.train.logits import plan, trained_loss
    from tests.unit.test_trained_logits import SHAPE, batch

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**{**SHAPE, "hidden_size": 64, "intermediate_size": 128})).save_pretrained(tmp_path)
    method = MethodConfig(name="qlora", bits=4, r=4, lora_dropout=0.0)
    model = apply_method(load_model(ModelConfig(name_or_path=str(tmp_path)), method), method, None).train()
    inputs = batch(packing=True)
    full = model(**inputs).loss
    full.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    head, _ = plan(model, chunk=7)
    new = trained_loss(model, head, inputs)
    new.backward()
    assert abs(float(new.detach()) - float(full.detach())) < 1e-5 * abs(float(full.detach()))
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            scale = float(reference[name].abs().max())
            assert torch.allclose(parameter.grad, reference[name], rtol=0, atol=1e-5 * scale)
