"""Run discovery, the one-run-at-a-time queue, stop/cancel, death detection and re-attachment
(webui.jobs.runs), against a small fake engine that speaks the run-folder contract."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.jobs.events import read_events
from engine.jobs.rundir import RunDir
from tests.polling import wait_for
from webui.jobs.paths import PathError
from webui.jobs.runs import RunError, RunManager
from webui.jobs.scheduler import Scheduler

FAKE_ENGINE = r'''
import os, signal, sys, time, yaml
sys.path.insert(0, os.environ["WORKBENCH_ROOT"])
from engine.jobs.events import EventWriter, Metrics, Progress
from engine.jobs.rundir import RunDir, process_identity, write_json_atomic
if sys.argv[1] == "train":  # `train CONFIG.yaml`, as from a terminal
    run = RunDir(yaml.safe_load(open(sys.argv[2]))["output_dir"])
else:  # `run RUN_DIR --kind train`, as the scheduler starts it
    assert sys.argv[1] == "run" and sys.argv[3:] == ["--kind", "train"], sys.argv
    run = RunDir(sys.argv[2])
mode = open(os.path.join(os.path.dirname(__file__), "mode")).read().strip()
events = EventWriter(run.events)
write_json_atomic(run.status, {"state": "training", **process_identity(), "error": None})
events.status("training")
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
if mode == "die":
    print("loading...", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
for step in range(1, 2000):
    events.write(Progress(step=step, total=2000, epoch=0.0, eta_s=1.0, elapsed_s=0.01 * step))
    events.write(Metrics(step=step, loss=2.0 / step, learning_rate=1e-4, grad_norm=1.0, tokens_per_s=10.0))
    if stop or (mode == "finish" and step == 3):
        break
    time.sleep(0.02)
state = "stopped" if stop else "completed"
write_json_atomic(run.metrics, {"train_loss": 0.5, "wall_s": 1.0})
write_json_atomic(run.status, {"state": state, **process_identity(), "error": None})
events.status(state)
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch):
    engine_dir = tmp_path / "fake"
    engine_dir.mkdir()
    (engine_dir / "fake_engine.py").write_text(FAKE_ENGINE)
    monkeypatch.setenv("WORKBENCH_ROOT", str(Path(__file__).resolve().parents[2]))
    data = tmp_path / "ws" / "uploads" / "d.jsonl"  # inside the workspace: the boundary refuses files elsewhere
    data.parent.mkdir(parents=True)
    data.write_text('{"instruction": "a", "output": "b"}\n')

    def set_mode(mode: str) -> None:
        (engine_dir / "mode").write_text(mode)

    def argv(*args: str) -> list[str]:
        return [sys.executable, str(engine_dir / "fake_engine.py"), *args]

    def config():
        return parse_config({"model": {"name_or_path": "tiny"}, "data": {"path": str(data)},
                             "output_dir": str(tmp_path / "unused")})

    set_mode("wait")
    manager = RunManager(Scheduler(tmp_path / "ws", engine=argv))
    return manager, set_mode, config, argv


def test_queue_stop_and_next_starts(fake):
    manager, set_mode, config, _ = fake
    first, queued = manager.submit(config(), name="first")
    assert not queued
    wait_for(lambda: manager.info("first").state == "training")
    second, queued = manager.submit(config(), name="second")
    assert queued and manager.info("second").state == "queued"
    third, _ = manager.submit(config(), name="third")
    manager.cancel("third")  # a queued run can be removed
    assert not (manager.runs_dir / "third").exists()
    assert manager.active() == "first" and manager.queued() == ["second"]

    wait_for(lambda: manager.monitor("first").refresh().train_loss)
    manager.stop("first")
    wait_for(lambda: manager.info("first").state == "stopped")
    set_mode("finish")
    assert wait_for(lambda: manager.tick() == "second" or manager.active() == "second")
    wait_for(lambda: manager.info("second").state == "completed")
    snap = manager.monitor("second").refresh()
    assert snap.finished and len(snap.train_loss) == 3
    assert [i.name for i in manager.list()] == ["second", "first"]
    assert manager.info("second").train_loss == 0.5


def test_death_without_final_event_is_reported(fake):
    manager, set_mode, config, _ = fake
    set_mode("die")
    name, _ = manager.submit(config(), name="doomed")
    wait_for(lambda: not manager.alive(name))
    manager.tick()
    info = manager.info(name)
    assert info.state == "failed" and "killed" in info.error.lower()
    last = read_events(info.path / "events.jsonl")[-1]
    assert last.state == "failed" and last.died and "loading..." in last.log_tail
    assert manager.monitor(name).refresh().error == info.error


def test_reattach_after_restart_and_cancel(fake):
    manager, set_mode, config, argv = fake
    name, _ = manager.submit(config(), name="long")
    wait_for(lambda: manager.info(name).state == "training")
    restarted = RunManager(Scheduler(manager.scheduler.workspace, engine=argv))  # a new launch.py: no Popen handles
    assert restarted.active() == name and restarted.alive(name)
    wait_for(lambda: restarted.monitor(name).refresh().step >= 2)
    second, queued = restarted.submit(config(), name="later")
    assert queued  # the machine is still taken by the re-attached run
    with pytest.raises(RunError):
        restarted.delete(name)
    restarted.cancel(name)
    assert not (manager.runs_dir / name).exists()
    manager.scheduler.wait(RunDir(manager.runs_dir / name), timeout=10)  # the first launch.py reaps its engine
    assert wait_for(lambda: restarted.tick() == "later" or restarted.active() == "later")
    restarted.cancel("later")


def test_names_cannot_leave_the_runs_folder(fake):
    manager, *_ = fake
    for bad in ("../x", "/etc", "a/b", "..", ""):
        with pytest.raises((PathError, RunError)):
            manager.run_dir(bad)


def test_runs_tab_overlays_and_compares(tmp_path: Path):
    import json

    from webui.context import AppContext
    from webui.tabs.runs import tab as runs_tab

    ctx = AppContext.create(tmp_path / "ws")
    assert "No run yet." in runs_tab.show_runs(ctx, [], "", None)[0]
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    for name, rank in (("a", 8), ("b", 16)):
        config = parse_config({"model": {"name_or_path": "tiny"}, "method": {"r": rank}, "data": {"path": str(data)},
                               "output_dir": str(ctx.runs.runs_dir / name)})
        run = ctx.runs.runs_dir / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(config.to_yaml())
        (run / "status.json").write_text('{"state": "completed", "pid": null, "error": null}')
        (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in (
            {"kind": "metrics", "t": 1, "step": 1, "loss": 2.0}, {"kind": "metrics", "t": 1, "step": 2, "loss": 1.0},
            {"kind": "metrics", "t": 1, "step": 2, "eval_loss": 1.5},
            {"kind": "status", "t": 1, "state": "completed"})))
    progress, frame, log, compare, seen, colors, tensorboard = runs_tab.show_runs(ctx, ["a", "b"], "", None)
    assert set(frame["series"]) == set(colors) == {"a · train", "a · eval", "b · train", "b · eval"}
    assert "<tr class='wb-diff'><td><code>method.r</code></td><td>8</td><td>16</td>" in compare
    assert "<tr class=''><td><code>train.learning_rate</code>" in compare
    assert runs_tab.show_runs(ctx, ["a", "b"], seen, None) == (runs_tab.gr.skip(),) * 7  # nothing new: nothing sent
    # nothing selected under runs listed: the page asks for a pick ("No run yet." under a table of runs misled)
    assert "Pick a run under Selected runs" in runs_tab.show_runs(ctx, [], "", None)[0]
    runs_tab.delete_confirmed(ctx, ["a"])
    assert [i.name for i in ctx.runs.list()] == ["b"]


def start_outside(manager: RunManager, argv, config, name: str, tmp_path: Path):
    """A run started from the command line into the workspace (not by this manager): `launch.py train CFG`."""
    import shutil
    import subprocess

    script = tmp_path / "cli" / "launch.py"  # argv like the user's: no "engine" in it
    script.parent.mkdir(exist_ok=True)
    shutil.copy(argv()[1], script)
    shutil.copy(Path(argv()[1]).parent / "mode", script.parent / "mode")
    run = manager.runs_dir / name
    run.mkdir(parents=True)
    config_path = tmp_path / "cli" / f"{name}.yaml"
    config_path.write_text(config().model_copy(update={"output_dir": str(run)}).to_yaml())
    (run / "config.yaml").write_text(config_path.read_text())  # the engine copies it in before its first status
    process = subprocess.Popen([sys.executable, str(script), "train", str(config_path)])
    return process, run


def test_command_line_run_is_alive_counts_and_is_never_failed(fake, tmp_path):
    import json

    manager, set_mode, config, argv = fake
    process, run = start_outside(manager, argv, config, "cli", tmp_path)
    try:
        wait_for(lambda: (run / "status.json").is_file() and manager.info("cli").state == "training")
        deadline = time.time() + 2.5
        while time.time() < deadline:  # the scheduler ticks every second while the page is open
            manager.tick()
            assert json.loads((run / "status.json").read_text())["state"] == "training"
            time.sleep(0.1)
        assert manager.alive("cli") and manager.active() == "cli"
        _, queued = manager.submit(config(), name="page")  # one run at a time counts command-line runs too
        assert queued and manager.info("page").state == "queued"
        manager.stop("cli")  # Stop on the page works for a run the page did not start
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert manager.info("cli").state == "stopped"
    assert wait_for(lambda: manager.tick() == "page" or manager.active() == "page")
    manager.cancel("page")


def test_a_recycled_pid_is_not_the_run(fake):
    from engine.jobs.rundir import write_json_atomic

    manager, _, config, _ = fake
    name, _ = manager.submit(config(), name="live")
    wait_for(lambda: manager.info(name).state == "training")
    pid = manager.run_dir(name).read_status()["pid"]
    run = manager.runs_dir / "ghost"
    run.mkdir()
    (run / "config.yaml").write_text(config().to_yaml())
    # The pid is alive, a training process even, but it started long after the ghost's engine: not the ghost.
    write_json_atomic(run / "status.json", {"state": "training", "pid": pid, "pid_started": 1.0})
    assert not manager.alive("ghost")
    manager.tick()
    assert manager.info("ghost").state == "failed" and manager.info(name).state == "training"
    manager.cancel(name)


def test_finished_engine_processes_are_reaped(fake):
    import psutil

    manager, set_mode, config, _ = fake
    set_mode("finish")
    name, _ = manager.submit(config(), name="quick")
    wait_for(lambda: manager.info(name).state == "completed")
    pid = manager.run_dir(name).read_status()["pid"]
    deadline = time.time() + 10
    while time.time() < deadline and psutil.pid_exists(pid):
        manager.tick()
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_run_again_starts_a_failed_run_afresh(fake):
    manager, set_mode, config, _ = fake
    set_mode("die")
    name, _ = manager.submit(config(), name="flaky")
    wait_for(lambda: not manager.alive(name))
    manager.tick()
    assert manager.info(name).state == "failed"
    (manager.runs_dir / name / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    old_monitor = manager.monitor(name).refresh()
    assert old_monitor.state == "failed"

    set_mode("finish")
    queued = manager.rerun(name)
    assert not queued
    assert not (manager.runs_dir / name / "checkpoints").exists()
    wait_for(lambda: manager.info(name).state == "completed")
    snap = manager.monitor(name).refresh()  # the page follows the new events, not the failed run's
    assert snap.state == "completed" and snap.error is None and len(snap.train_loss) == 3
    assert snap.version > old_monitor.version
    with pytest.raises(RunError, match="failed or stopped"):
        manager.rerun(name)  # a completed run keeps its result


def test_page_follows_a_run_overwritten_from_the_command_line(fake):
    import json

    manager, set_mode, config, _ = fake
    set_mode("finish")
    name, _ = manager.submit(config(), name="twice")
    wait_for(lambda: manager.info(name).state == "completed")
    first = manager.monitor(name).refresh()
    assert len(first.train_loss) == 3
    events = manager.runs_dir / name / "events.jsonl"
    events.unlink()  # `launch.py train CFG --overwrite`: a new events.jsonl, shorter than the old one
    events.write_text(json.dumps({"kind": "status", "t": time.time(), "state": "training"}) + "\n")
    snap = manager.monitor(name).refresh()
    assert snap.state == "training" and snap.train_loss == [] and snap.version > first.version


def test_the_next_run_waits_until_the_finished_one_has_exited(fake):
    import subprocess

    from engine.jobs.rundir import process_identity, write_json_atomic

    manager, set_mode, config, _ = fake
    exiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # saved, still tearing down
    try:
        run = manager.runs_dir / "ending"
        run.mkdir()
        (run / "config.yaml").write_text(config().to_yaml())
        write_json_atomic(run / "status.json", {"state": "completed", **process_identity(exiting.pid)})
        assert manager.active() == "ending"
        _, queued = manager.submit(config(), name="next")
        assert queued
    finally:
        exiting.kill()
        exiting.wait()
    assert manager.tick() == "next"
    manager.cancel("next")
