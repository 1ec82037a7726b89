"""Issue 24 item 13, the engine's side: a run whose folder is deleted while it trains notices it at its next step
and ends, without writing a status that would make the folder again."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from engine.jobs.kinds import JobKind
from engine.jobs.lifecycle import JobFolderGoneError, run_job
from engine.jobs.rundir import RunDir
from engine.train.throughput import Throughput
from engine.train.trainer import EventCallback
from tests.cli import engine_process_state_kept


class Nothing(BaseModel):
    pass


def deleting_body(context) -> None:
    shutil.rmtree(context.job.path)  # as `rm -r` by hand, or Delete on another page
    callback = EventCallback(context.reporter, context.stop, Throughput())
    callback.on_step_end(None, SimpleNamespace(global_step=3, max_steps=10, epoch=0.3), SimpleNamespace())


KIND = JobKind("train", Nothing, RunDir, folder="runs", lane="test", slots=1, body=f"{__name__}:deleting_body",
               load=lambda _path: Nothing())


def test_a_run_whose_folder_is_deleted_ends_at_its_next_step_and_writes_nothing(tmp_path: Path, capsys):
    run = RunDir(tmp_path / "runs" / "gone")
    run.path.mkdir(parents=True)
    run.config.write_text("{}\n")
    with engine_process_state_kept():
        assert run_job(KIND, run.path) == 1
    assert not run.path.exists()  # no status.json made it again
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: The run folder {run.path} was deleted while it trained: the run ended at step 3.")


def test_the_step_callback_checks_the_folder(tmp_path: Path):
    reporter = SimpleNamespace(job=RunDir(tmp_path / "missing"))
    with pytest.raises(JobFolderGoneError):
        EventCallback(reporter, SimpleNamespace(requested=False), Throughput()).on_step_end(
            None, SimpleNamespace(global_step=1, max_steps=2, epoch=0.5), SimpleNamespace())
