"""A training run with the head and the loss only where labels train (engine/train/logits.py, issue 23) logs the
same loss curve and evaluation loss as the full computation for the same seed. In process, one short run each."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.jobs.rundir import RunDir
from engine.train.recipe import run_train
from tests.cli import MEMORISE, write_rows


def train(tiny_model: Path, data: Path, output: Path) -> tuple[list[float], float, str]:
    """(loss per step, final eval loss, train.log) of a short packed LoRA run."""
    config = parse_config({
        "model": {"name_or_path": str(tiny_model)}, "method": {"name": "lora", "r": 4},
        "data": {"path": str(data), "val_size": 0.25},
        "train": {"max_steps": 5, "batch_size": 4, "learning_rate": 1e-2, "packing": "on", "logging_steps": 1,
                  "save_steps": 50},
        "output_dir": str(output)})
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run_train(config) == 0
    finally:  # run_train turns SIGTERM/SIGINT into its stop flag: give pytest its own back
        for number, handler in handlers.items():
            signal.signal(number, handler)
    run = RunDir(output)
    events = [json.loads(line) for line in run.events.read_text().splitlines()]
    losses = [e["values"]["loss"] for e in events if e.get("kind") == "metrics" and "loss" in e.get("values", {})]
    return losses, run.read_metrics()["eval_loss"], (output / "train.log").read_text()


def test_the_loss_curve_equals_the_full_computations(tiny_model: Path, tmp_path: Path, monkeypatch):
    data = write_rows(tmp_path / "rows.json", MEMORISE * 4)
    new, new_eval, log = train(tiny_model, data, tmp_path / "trained-only")
    assert "loss: the output head projects only the positions whose next token trains" in log
    monkeypatch.setattr("engine.train.trainer.plan", lambda _model: (None, "loss: full logits (the test's)"))
    old, old_eval, log = train(tiny_model, data, tmp_path / "full")
    assert "loss: full logits (the test's)" in log
    assert len(new) == len(old) == 5 and len(set(new)) > 1  # five steps that trained
    assert new == pytest.approx(old, rel=1e-5) and new_eval == pytest.approx(old_eval, rel=1e-5)
