"""Issue 24 item 12: a full disk while a job writes its status or a checkpoint ends the job failed with one
sentence ("Disk full: free space in WORKSPACE and Resume."), not "exited with code 1 without a final status" and a
traceback; the page's scheduler, retrying every second, says it once instead of logging a traceback every tick."""

from __future__ import annotations

import errno
import logging
import sys
import tempfile
from pathlib import Path

import pytest
from pydantic import BaseModel

from engine.jobs import rundir
from engine.jobs.failures import explain, explain_exit
from engine.jobs.kinds import JobKind
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import RunDir
from tests.cli import engine_process_state_kept
from webui.jobs.scheduler import Scheduler

FULL = {"full": False}  # the body turns the disk full: no new file fits any more


class Nothing(BaseModel):
    pass


def full_disk_body(_context) -> None:
    FULL["full"] = True
    raise OSError(errno.ENOSPC, "No space left on device", "checkpoints/checkpoint-4/model.safetensors")


KIND = JobKind("train", Nothing, RunDir, folder="runs", lane="test", slots=1, body=f"{__name__}:full_disk_body",
               load=lambda _path: Nothing())  # a run's folder and advice, this test's body


@pytest.fixture
def full_disk(monkeypatch):
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if FULL["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    FULL["full"] = False
    monkeypatch.setattr(rundir.tempfile, "mkstemp", mkstemp)
    with engine_process_state_kept():  # run_job turns SIGTERM/SIGINT into its stop flag
        yield


@pytest.mark.usefixtures("full_disk")
def test_a_full_disk_while_a_checkpoint_and_the_status_are_written_ends_in_one_sentence(tmp_path: Path, capsys):
    job = RunDir(tmp_path / "workspace" / "runs" / "full")
    job.path.mkdir(parents=True)
    job.config.write_text("{}\n")
    assert run_job(KIND, job.path) == 1
    sentence = f"Disk full: free space in {tmp_path / 'workspace'} and Resume."
    status = job.read_status()
    assert status["state"] == "failed" and status["error"] == sentence  # written in place: no new file fitted
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {sentence}"
    assert not list(job.path.glob(".status.json.*"))  # no temporary file left behind


def test_every_way_a_full_disk_is_worded_is_recognised(tmp_path: Path):
    run = tmp_path / "ws" / "runs" / "r"
    safetensors = RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                               '"No space left on device" })')
    assert explain(safetensors, "train", run) == f"Disk full: free space in {tmp_path / 'ws'} and Resume."
    wrapped = RuntimeError("saving failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert explain(wrapped, "export", run).endswith("and start it again.")
    tail = "Traceback ...\nOSError: [Errno 28] No space left on device: 'status.json'\n"
    assert explain_exit(1, tail, "train", folder=run).startswith("Disk full: free space in")


@pytest.mark.usefixtures("full_disk")
def test_the_scheduler_says_a_full_disk_once_not_every_tick(tmp_path: Path, caplog):
    scheduler = Scheduler(tmp_path / "ws")
    run = RunDir(scheduler.workspace / "runs" / "dead")
    run.write_status("training", pid=2**22 + 7, pid_started=1.0, error=None)  # an engine that is gone
    run.config.write_text("{}\n")
    run.stdout_log.write_text("OSError: [Errno 28] No space left on device\n")
    FULL["full"] = True
    scheduler.tick()
    status = run.read_status()  # rewritten in place: the page shows the run failed, and why
    assert status["state"] == "failed" and status["error"].startswith("Disk full: free space in")

    run.write_status("training", pid=2**22 + 7, pid_started=1.0, error=None)
    with caplog.at_level(logging.INFO, logger="webui"):
        for _ in range(5):  # nothing can be written at all now: the scheduler retries every tick
            scheduler._guarded(run, lambda: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    said = [record for record in caplog.records if "disk is full" in record.getMessage()]
    assert len(said) == 1 and not any(record.exc_info for record in caplog.records)
    assert sys.exc_info() == (None, None, None)
