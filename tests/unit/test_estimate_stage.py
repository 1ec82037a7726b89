"""The time estimate of a preference run (engine/estimate/timing.py): a pair trains two sequences, DPO and KTO run a
reference forward (KTO its KL sequence's forwards too), and a rate measured on a run of one stage is converted to
another through the FLOPs per token of each; the newest run of the same stage and method is preferred, and a run of
a handful of steps (its rate mostly start-up) is the last resort. In-process and pure: nothing trains."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.estimate import timing
from tests.unit.test_estimate import demo, run_config

PARAMS = 1_000_000


def finished(runs: Path, name: str, rate: float, stage: str = "sft", method: str = "lora", steps: int = 100,
             age: int = 0) -> None:
    (runs / name).mkdir()
    metrics = runs / name / "metrics.json"
    metrics.write_text(json.dumps({"tokens_per_s": rate, "total_params": PARAMS, "method": method, "stage": stage,
                                   "steps": steps}))
    os.utime(metrics, (1_000_000 - age, 1_000_000 - age))


def test_a_preference_step_costs_the_policy_on_both_sequences_and_the_references_forward():
    sft = timing.flops_per_token("lora", 10)
    assert sft == 40 and timing.flops_per_token("lora", 10, stage="sft") == sft  # SFT unchanged
    assert timing.flops_per_token("lora", 10, stage="orpo") == sft  # no reference: the policy's work alone
    assert timing.flops_per_token("lora", 10, stage="simpo") == sft
    assert timing.flops_per_token("lora", 10, stage="dpo") == sft + 20  # one more forward: the reference's
    assert timing.flops_per_token("full", 10, stage="dpo") == 60 + 20
    assert timing.flops_per_token("lora", 10, stage="kto") == sft + 3 * 20  # KL forward, reference on both
    dpo = run_config(stage="dpo", max_steps=10, batch_size=2, cutoff_len=100)
    assert timing.tokens_to_train(dpo) == 2 * 2000  # chosen and rejected, each up to cutoff_len
    kto = run_config(stage="kto", max_steps=10, batch_size=2, cutoff_len=100)
    assert timing.tokens_to_train(kto) == 2000  # one completion a row (its KL sequence is not counted)
    assert timing.tokens_to_train(run_config(max_steps=10, batch_size=2, cutoff_len=100)) == 2000


def test_a_dpo_estimate_from_a_kto_run_goes_through_the_flops(tmp_path: Path):
    finished(tmp_path, "p-kto-pairs", 2079.0, stage="kto")
    flops, run = timing.measured_rate(tmp_path, stage="dpo", method="lora")
    assert run == "p-kto-pairs"
    machine = 2079.0 * 10 * PARAMS  # KTO with LoRA: 10 FLOPs a parameter per counted token
    assert flops == pytest.approx(machine)
    config = run_config(stage="dpo", max_steps=10, batch_size=2, cutoff_len=100)
    params = timing.matmul_params(demo())
    rate, seconds = timing.seconds(config, demo(), flops)
    assert rate == pytest.approx(machine / (6 * params))  # DPO with LoRA: 6 FLOPs a parameter per counted token
    sft_rate, sft_seconds = timing.seconds(run_config(max_steps=10, batch_size=2, cutoff_len=100), demo(), flops)
    assert seconds / sft_seconds == pytest.approx(2 * 6 / 4)  # within 1 %: twice the tokens at 6/4 the FLOPs
    assert seconds == pytest.approx(4000 / rate)


def test_the_same_stage_and_method_first_then_the_newest_and_runs_of_a_few_steps_last(tmp_path: Path):
    finished(tmp_path, "dpo-lora", 100.0, stage="dpo", age=30)
    finished(tmp_path, "kto-lora", 500.0, stage="kto", age=20)
    finished(tmp_path, "dpo-lora-short", 900.0, stage="dpo", steps=3, age=10)
    finished(tmp_path, "sft-full", 300.0, method="full")
    assert timing.measured_rate(tmp_path, stage="dpo", method="lora")[1] == "dpo-lora"
    assert timing.measured_rate(tmp_path, stage="orpo", method="lora")[1] == "sft-full"  # none of it: the newest
    assert timing.measured_rate(tmp_path)[1] == "sft-full"  # no method asked: the newest long enough
    only_short = tmp_path / "short"
    only_short.mkdir()
    finished(only_short, "dpo-lora-short", 900.0, stage="dpo", steps=3)
    assert timing.measured_rate(only_short, stage="sft", method="lora")[1] == "dpo-lora-short"  # better than none
    old = tmp_path / "old"
    old.mkdir()
    (old / "before-stages").mkdir()
    (old / "before-stages" / "metrics.json").write_text(json.dumps(
        {"tokens_per_s": 10.0, "total_params": PARAMS, "method": "lora"}))  # no stage, no steps: an SFT run
    flops, run = timing.measured_rate(old, stage="sft", method="lora")
    assert run == "before-stages" and flops == 10.0 * 4 * PARAMS


def test_the_steady_rate_leaves_the_first_steps_start_up_out(monkeypatch):
    from engine.train import throughput as module

    now = [100.0]
    monkeypatch.setattr(module.time, "time", lambda: now[0])
    meter = module.Throughput()
    meter.begin(0, 0)
    assert meter.steady_tokens_per_s(0) is None  # no step yet
    now[0] = 110.0  # the first step: 10 s of start-up for 100 tokens
    meter.step_done(100)
    assert meter.steady_tokens_per_s(100) is None  # one step: nothing after the start-up yet
    for tokens in (200, 300, 400, 500):  # then 1 s a step of 100 tokens
        now[0] += 1.0
        meter.step_done(tokens)
    assert meter.tokens_per_s(500) == pytest.approx(500 / 14)  # the attempt's figure, start-up in it
    assert meter.steady_tokens_per_s(500) == pytest.approx(100.0)  # after the first step


def test_the_steady_rate_is_preferred_where_metrics_json_has_it(tmp_path: Path):
    finished(tmp_path, "dpo-lora", 40.0, stage="dpo")
    metrics = tmp_path / "dpo-lora" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "steady_tokens_per_s": 100.0}))
    flops, run = timing.measured_rate(tmp_path, stage="dpo", method="lora")
    assert run == "dpo-lora" and flops == pytest.approx(100.0 * 6 * PARAMS)


def test_the_train_tabs_line_for_a_dpo_run_counts_both_sequences_and_names_the_run(tmp_path: Path):
    from types import SimpleNamespace

    from webui.tabs.train.estimate import time_line

    finished(tmp_path, "p-kto-pairs", 2079.0, stage="kto")
    ctx = SimpleNamespace(runs=SimpleNamespace(runs_dir=tmp_path))
    dpo = run_config(stage="dpo", max_steps=10, batch_size=2, cutoff_len=100)
    line = time_line(ctx, None, dpo, demo())
    rate, _ = timing.seconds(dpo, demo(), 2079.0 * 10 * PARAMS)
    assert "measured on run `p-kto-pairs`" in line and "at most 4,000 tokens" in line
    assert f"{rate:,.0f} tokens/s" in line  # converted through the FLOPs of KTO and DPO
    sft = time_line(ctx, None, run_config(max_steps=10, batch_size=2, cutoff_len=100), demo())
    assert "at most 2,000 tokens" in sft  # an SFT run's rows: one sequence each, as before


def test_a_run_that_recomputed_its_activations_did_more_flops_per_token(tmp_path: Path):
    finished(tmp_path, "checkpointed", 100.0)
    (tmp_path / "checkpointed" / "config.yaml").write_text("train:\n  gradient_checkpointing: true\n")
    assert timing.measured_rate(tmp_path)[0] == pytest.approx(100.0 * 6 * PARAMS)  # a third forward a token
    (tmp_path / "checkpointed" / "config.yaml").write_text(": not yaml [")
    assert timing.measured_rate(tmp_path)[0] == pytest.approx(100.0 * 4 * PARAMS)  # unreadable: taken as off
