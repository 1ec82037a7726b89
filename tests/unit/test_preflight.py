"""The pre-flight memory check (issue 11, defect 9): a configuration whose step cannot fit is refused with one
sentence before the first step; an ordinary one passes and logs its bound."""

from __future__ import annotations

import json
import resource
import signal
from pathlib import Path

import pytest

from engine.config import ModelConfig, parse_config
from engine.jobs.rundir import RunDir
from engine.model.loading import load_model
from engine.train.preflight import GIB, MemoryCheckError, check_fits, estimate, largest_batch
from engine.train.recipe import run_train


def test_largest_batch_padded_and_packed():
    lengths = [10, 50, 20, 40, 30]
    assert largest_batch(lengths, 2, packing=False) == (2, 50)
    assert largest_batch(lengths, 2, packing=True) == (1, 90)
    assert largest_batch(lengths, 99, packing=True) == (1, 150)
    assert largest_batch(lengths, 99, packing=True, pack_len=60) == (3, 60)  # [50, 10] [40, 20] [30]


def test_the_audits_batch_is_refused_and_an_ordinary_one_passes(tiny_model: Path):
    model = load_model(ModelConfig(name_or_path=str(tiny_model)))
    lengths = [44] * 8192  # batch 8192 at cutoff 8192 on short rows: one packed row of 360,448 tokens
    step = estimate(model, trainable=10_000, lengths=lengths, batch_size=8192, packing=True)
    assert step.tokens == 44 * 8192 and step.attention == (44 * 8192) ** 2
    with pytest.raises(MemoryCheckError) as refused:
        check_fits(step, 20 * GIB, "RAM", batch_size=8192, cutoff_len=8192, packing=True)
    sentence = str(refused.value)
    assert "attention mask" in sentence and "121.0 GiB" in sentence and "train.batch_size (now 8192)" in sentence
    assert "train.packing: off" in sentence and "cutoff_len" not in sentence and "\n" not in sentence  # rows are short
    step = estimate(model, trainable=10_000, lengths=[512] * 64, batch_size=64, packing=False)
    with pytest.raises(MemoryCheckError, match=r"lower train.batch_size \(now 64\), or lower train.cutoff_len"):
        check_fits(step, 0, "RAM", batch_size=64, cutoff_len=512, packing=False)

    ordinary = estimate(model, trainable=10_000, lengths=[200] * 40, batch_size=4, packing=False)
    line = check_fits(ordinary, 20 * GIB, "RAM", batch_size=4, cutoff_len=256, packing=False)
    assert line.startswith("memory check: one step needs at least") and ordinary.total < GIB


def test_a_run_that_cannot_fit_fails_before_its_first_step(tiny_model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("engine.train.preflight.available_memory", lambda: (256 * 2**20, "RAM"))  # a small machine
    data = tmp_path / "short.jsonl"
    answer = "The quick brown fox jumps over the lazy dog. " * 12  # about 150 tokens a row
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": answer}) + "\n" for i in range(2048)))
    config = parse_config({
        "model": {"name_or_path": str(tiny_model)}, "method": {"name": "lora", "r": 4},
        "data": {"path": str(data)}, "train": {"max_steps": 1, "batch_size": 2048, "cutoff_len": 8192, "packing": "on"},
        "output_dir": str(tmp_path / "run")})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run_train(config) == 1
    finally:  # run_train turns SIGTERM/SIGINT into its stop flag: give pytest its own back
        for number, handler in handlers.items():
            signal.signal(number, handler)
    status = RunDir(tmp_path / "run").read_status()
    assert status["state"] == "failed" and status["error"].startswith("This configuration cannot fit")
    assert status.get("step") in (None, 0)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 2048  # refused, not attempted
