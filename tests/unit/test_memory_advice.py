"""Issue 26 item 4: a run refused for memory gets the sentence with a configuration that fits (the same effective
batch, fewer rows at a time), written to RUN/advice.json and printed as a config diff; accepting it completes the run
with the same effective batch. The machine's memory is planted (preflight.available_memory), as in test_preflight."""

from __future__ import annotations

import json
from pathlib import Path

from engine.config import parse_config
from engine.estimate.advice import ADVICE, Advice
from engine.jobs.rundir import RunDir
from engine.model.loading import load_model, load_tokenizer
from engine.model.methods import apply_method, count_parameters
from engine.train import preflight
from tests.cli import run_train_in_process


def _train(config) -> int:
    return run_train_in_process(config)


def test_a_refused_run_gets_advice_that_completes_with_the_same_effective_batch(tiny_model: Path, tmp_path: Path,
                                                                                monkeypatch, capsys):
    data = tmp_path / "long.jsonl"
    answer = "The quick brown fox jumps over the lazy dog. " * 20  # longer than the cutoff: every row is cut to 128
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": answer}) + "\n" for i in range(16)))
    raw = {"model": {"name_or_path": str(tiny_model)}, "method": {"name": "lora", "r": 4},
           "data": {"path": str(data)}, "output_dir": str(tmp_path / "run"),
           "train": {"max_steps": 1, "batch_size": 8, "cutoff_len": 128, "packing": "off", "save_steps": 1}}
    config = parse_config(raw)

    model = apply_method(load_model(config.model, config.method), config.method, load_tokenizer(config.model))
    trainable, _ = count_parameters(model)
    step = preflight.estimate(model, trainable, [128] * 16, 8, False, config=config, chunked=True)
    beyond = step.total - step.weights - step.overhead  # what the step needs beside the loaded model and process
    monkeypatch.setattr(preflight, "available_memory", lambda: (int(beyond * 0.4), "RAM"))  # a small machine

    assert _train(config) == 1
    error = RunDir(tmp_path / "run").read_status()["error"]
    assert error.startswith("This configuration cannot fit") and "\n" not in error
    assert "set train.batch_size 2 (now 8), train.gradient_accumulation_steps 4 (now 1)" in error
    assert "the same 8 rows per update" in error
    assert "-  batch_size: 8\n+  batch_size: 2" in capsys.readouterr().out  # the CLI's config diff
    advice = Advice.from_json(json.loads((tmp_path / "run" / ADVICE).read_text()))

    accepted = advice.apply(parse_config({**raw, "output_dir": str(tmp_path / "again")}))
    assert _train(accepted) == 0
    run = RunDir(tmp_path / "again")
    assert run.read_status()["state"] == "completed"
    kept = run.read_config().train
    assert (kept.batch_size, kept.gradient_accumulation_steps) == (2, 4)  # 8 rows per update, as asked
    assert json.loads(run.metrics.read_text())["steps"] == 1


def test_a_run_killed_out_of_memory_is_offered_run_again_with_this(tmp_path: Path, monkeypatch):
    """The page's side: a run the kernel killed gets the estimate's advice from config.json, and Run again with
    this requeues it with the change, resuming from its newest complete checkpoint."""
    from engine.estimate import room
    from webui.context import AppContext
    from webui.tabs.runs import run_again

    ctx = AppContext.create(tmp_path / "ws")
    demo = Path(__file__).resolve().parents[2] / "assets" / "models" / "workbench-demo-5m"
    data = ctx.workspace / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    run = ctx.runs.runs_dir / "big"
    run.mkdir(parents=True)
    config = parse_config({"model": {"name_or_path": str(demo)}, "data": {"path": str(data)}, "output_dir": str(run),
                           "train": {"batch_size": 16, "cutoff_len": 2048}})
    (run / "config.yaml").write_text(config.to_yaml())
    killed = "The kernel's out-of-memory killer ended the engine process (SIGKILL); out of memory (RAM): lower ..."
    (run / "status.json").write_text(json.dumps({"state": "failed", "pid": None, "error": killed}))
    monkeypatch.setattr(room, "gpu_free", lambda: None)
    monkeypatch.setattr(room, "memory_room", lambda: (64 * 2**30, "RAM"))  # the estimate said it fits: it did not
    requeued = []
    monkeypatch.setattr(ctx.runs.jobs, "requeue", lambda job, changed=None: requeued.append(changed) or [job])

    text, button = run_again.show_advice(ctx, ["big"])
    assert button["visible"] and "train.gradient_checkpointing true (now false)" in text["value"]
    checkpoint = RunDir(run).checkpoints / "checkpoint-5"
    monkeypatch.setattr(RunDir, "last_checkpoint", lambda _self: checkpoint)
    run_again.rerun_advised(ctx, ["big"])
    assert requeued[-1].train.gradient_checkpointing and requeued[-1].train.resume  # from its checkpoint
    assert requeued[-1].train.batch_size * requeued[-1].train.gradient_accumulation_steps == 16

    (run / "status.json").write_text(json.dumps({"state": "failed", "pid": None, "error": "ValueError: bad row"}))
    assert run_again.show_advice(ctx, ["big"])[1]["visible"] is False  # not a memory failure: nothing offered
