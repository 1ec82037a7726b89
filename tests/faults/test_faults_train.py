"""Faults tried and survived: a training process killed (SIGKILL, as `kill -9` or the out-of-memory killer would)
while it writes a checkpoint or its final weights, then `--resume` without any hand edit.

The kills land at exact points through WORKBENCH_FAULT (engine/jobs/faults.py): the engine kills itself there."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.jobs.events import Log, Metrics, Progress, final_status, read_events
from engine.jobs.faults import FAULT_ENV
from engine.jobs.rundir import RunDir, checkpoint_complete
from tests.cli import MEMORISE, ROOT, engine_env, launch, write_config, write_rows


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rows(tmp_path_factory.mktemp("data") / "memorise.json", MEMORISE)


def launch_with_fault(fault: str, *args: str) -> subprocess.CompletedProcess:
    """`python launch.py ARGS...` with WORKBENCH_FAULT set for this one process."""
    return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT, env={**engine_env(), FAULT_ENV: fault},
                          capture_output=True, text=True, timeout=300)


def killed_run(tmp_path: Path, model: Path, data: Path, fault: str, method: str = "lora", max_steps: int = 4,
               save_steps: int = 2) -> RunDir:
    """A run started with WORKBENCH_FAULT=fault; asserts that the process died of SIGKILL there."""
    run = RunDir(tmp_path / "run")
    config = write_config(tmp_path / "run.yaml", model, data, run.path, method={"name": method},
                          train={"max_steps": max_steps, "save_steps": save_steps, "save_total_limit": 1})
    result = launch_with_fault(fault, "train", str(config))
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert f"{FAULT_ENV}={fault}" in result.stderr
    assert final_status(read_events(run.events)).state in ("training", "saving")  # no final status: it died
    return run


def resume(run: RunDir) -> tuple[str, list]:
    """`--resume RUN_DIR`; asserts it completes. Returns its stdout and the events it wrote."""
    before = len(read_events(run.events))
    result = launch("train", "--resume", str(run.path))
    assert result.returncode == 0, result.stderr[-2000:]
    events = read_events(run.events)[before:]
    assert final_status(events).state == "completed"
    return result.stdout, events


def logged(events: list) -> list[str]:
    return [e.message for e in events if isinstance(e, Log)]


def test_killed_while_writing_a_checkpoint_resumes_from_the_one_before(tiny_model, rows, tmp_path):
    run = killed_run(tmp_path, tiny_model, rows, "checkpoint:4")
    half = run.checkpoints / "checkpoint-4"
    assert (half / "adapter_model.safetensors").is_file() and not (half / "trainer_state.json").exists()
    assert run.last_checkpoint().name == "checkpoint-2" and run.incomplete_checkpoints() == [half]
    assert run.weights_dir() is None
    run.write_status("failed", pid=None, error="The engine process was killed (SIGKILL).")  # the scheduler's verdict

    stdout, events = resume(run)
    line = "checkpoint-4 is incomplete (killed while it was written): removed; resuming from checkpoint-2"
    assert line in logged(events) and line in stdout
    assert [e.step for e in events if isinstance(e, Progress)] == [3, 4]  # steps 3 and 4 trained again
    assert [p.name for p in run.all_checkpoints()] == ["checkpoint-4"]  # rotated (save_total_limit 1)
    assert checkpoint_complete(run.checkpoints / "checkpoint-4")
    assert run.weights_dir() == run.adapter and run.read_metrics()["steps"] == 4


def test_killed_before_any_checkpoint_was_complete_says_to_start_afresh(tiny_model, rows, tmp_path):
    run = killed_run(tmp_path, tiny_model, rows, "checkpoint:2")
    result = launch("train", "--resume", str(run.path))
    assert result.returncode == 2
    assert result.stderr == (f"error: config: {run.path} has no complete checkpoint to resume from: checkpoint-2 "
                             "is incomplete (killed while it was written); start it afresh with --overwrite.\n")
    assert (run.checkpoints / "checkpoint-2").is_dir()  # nothing removed by a resume that could not start

    afresh = launch("train", str(tmp_path / "run.yaml"), "--overwrite")  # what the sentence says to do
    assert afresh.returncode == 0, afresh.stderr[-2000:]
    assert final_status(read_events(run.events)).state == "completed" and run.last_checkpoint().name == "checkpoint-4"


@pytest.mark.parametrize("method, weights", [("lora", "adapter"), ("full", "model")])
def test_killed_during_the_final_save_leaves_no_result_and_resumes(method, weights, tiny_model, rows, tmp_path):
    run = killed_run(tmp_path, tiny_model, rows, "final-save", method=method, max_steps=2, save_steps=50)
    assert final_status(read_events(run.events)).state == "saving"
    partial = [p.name for p in run.path.glob(f".{weights}.partial-*")]
    assert len(partial) == 1 and not (run.path / weights).exists() and not run.metrics.exists()
    assert run.weights_dir() is None
    assert run.last_checkpoint().name == "checkpoint-2"  # the Trainer checkpoints the last step

    stdout, events = resume(run)
    assert "resuming from checkpoint-2" in logged(events) and "resuming from checkpoint-2" in stdout
    assert not [e for e in events if isinstance(e, Progress)]  # nothing left to train: only the save again
    assert run.weights_dir() == run.path / weights
    assert not list(run.path.glob(f".{weights}.partial-*"))  # the killed save's folder is gone
    assert (run.weights_dir() / "chat_template.jinja").is_file() and run.read_metrics()["steps"] == 2
    logged_losses = [e.loss for e in read_events(run.events) if isinstance(e, Metrics) and e.loss is not None]
    assert len(logged_losses) == 2  # both steps' losses, from the killed attempt: the mean, not 0
    assert run.read_metrics()["train_loss"] == pytest.approx(sum(logged_losses) / 2)


def test_a_checkpoint_is_complete_only_with_a_whole_trainer_state(tmp_path):
    run = RunDir(tmp_path)
    for step, state in ((1, '{"global_step": 1}'), (2, '{"global_step": 2}'), (3, '{"global_st'), (4, None),
                        (5, '{"global_step": 4}')):
        folder = run.checkpoints / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    (run.checkpoints / "checkpoint-x").mkdir()  # not a checkpoint at all
    assert run.last_checkpoint().name == "checkpoint-2"
    assert [p.name for p in run.incomplete_checkpoints()] == ["checkpoint-3", "checkpoint-4", "checkpoint-5"]


def test_a_half_written_weights_folder_is_no_result(tmp_path):
    """What an engine from before atomic saves left when killed while saving: never listed as a result."""
    run = RunDir(tmp_path)
    run.adapter.mkdir()
    (run.adapter / ".tmpk2j4x9").write_bytes(b"\0" * 64)
    (run.adapter / "README.md").write_text("# card")
    run.model.mkdir()
    (run.model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert run.weights_dir() is None
    (run.adapter / "adapter_config.json").write_text("{}")
    (run.adapter / "adapter_model.safetensors").write_bytes(b"\0")
    assert run.weights_dir() == run.adapter


def test_run_again_removes_the_partial_folder_of_a_killed_save(tmp_path):
    run = RunDir(tmp_path)
    partial = tmp_path / ".adapter.partial-999999999"  # a pid no process has
    partial.mkdir()
    run.clear_outputs()
    assert not partial.exists()
