"""A rank that dies ends a run of several processes (engine/train/launch.py): `kill -9` of rank 1 while two CPU
processes train makes `python launch.py train` exit within seconds, not hang, with a sentence naming the rank and
its signal, on stderr and as the run's failed status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from engine.jobs.events import Progress, Status, read_events
from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, ROOT, engine_env, write_config, write_rows


def rank_process(launcher: subprocess.Popen, rank: int) -> psutil.Process | None:
    """The process torchrun started as `rank` (its environment's RANK), among the launcher's descendants."""
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "LOCAL_WORLD_SIZE" in child.environ():
                return child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def test_kill_9_of_one_rank_fails_the_run_within_seconds_naming_the_rank(tiny_model, tmp_path) -> None:
    data = write_rows(tmp_path / "rows.json", MEMORISE * 4)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run",
                          train={"max_steps": 5000, "batch_size": 2, "packing": "on", "report_to": "none"})
    config.write_text(config.read_text(encoding="utf-8") + "distributed:\n  nproc_per_node: 2\n", encoding="utf-8")
    run = RunDir(tmp_path / "run")
    launcher = subprocess.Popen([sys.executable, "launch.py", "train", str(config)], cwd=ROOT, env=engine_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (run.events.exists() and any(isinstance(e, Progress) for e in read_events(run.events))):
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()[1][-3000:]
            time.sleep(0.1)
        victim = rank_process(launcher, 1)
        assert victim is not None, "rank 1 was not found among the launcher's processes"
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, err = launcher.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode != 0
    assert took < 10, f"the launcher took {took:.1f} s to end after rank 1 died"
    assert "Rank 1 of 2 was killed by SIGKILL" in err, err[-3000:]
    final = [event for event in read_events(run.events) if isinstance(event, Status)][-1]
    assert final.state == "failed" and final.error.startswith("Rank 1 of 2 was killed by SIGKILL"), final
    assert str(run.path / "ranks" / "rank-1.log") in final.error or "ranks/rank-1.log" in final.error
    left = [p.pid for p in psutil.process_iter(["environ", "cmdline"])
            if (p.info["environ"] or {}).get("RANK") is not None and str(config) in " ".join(p.info["cmdline"] or [])]
    assert not left, f"rank processes outlived the run: {left}"  # rank 0 ended too, not left waiting on rank 1
