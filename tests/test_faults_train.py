"""Faults tried and survived: a training process killed (SIGKILL, as `kill -9` or the out-of-memory killer would)
while it writes a checkpoint, then `--resume` without any hand edit.

The kills land at exact points through WORKBENCH_FAULT (engine/faults.py): the engine kills itself there."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import Log, Progress, final_status, read_events
from engine.faults import FAULT_ENV
from engine.rundir import RunDir, checkpoint_complete
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
