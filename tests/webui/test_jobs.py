"""The job model of the web process (webui.jobs.scheduler): every engine process the scheduler starts is reaped, an
export is a job found again after a restart, the page has one reader of events files, and lists are
re-sent only when a job's status changed."""

from __future__ import annotations

import ast
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.config import parse_config
from engine.jobs.events import EventTail, Status, read_events
from engine.jobs.failures import oom_kill_count
from engine.jobs.rundir import ExportDir
from tests.polling import wait_for
from webui.components.render import runs_rows
from webui.context import AppContext
from webui.jobs.devices import Gpu, GpuList
from webui.jobs.scheduler import Scheduler
from webui.tabs import export as export_tab
from webui.tabs.runs import tab as runs_tab

ROOT = Path(__file__).resolve().parents[2]

# Speaks the job-folder contract for both kinds: `run FOLDER --kind train|export`.
FAKE_ENGINE = r'''
import os, sys, time
sys.path.insert(0, os.environ["WORKBENCH_ROOT"])
from engine.jobs.events import EventWriter, Metrics
from engine.jobs.rundir import ExportDir, RunDir, process_identity, write_json_atomic
mode = open(os.path.join(os.path.dirname(__file__), "mode")).read().strip()
assert sys.argv[1] == "run" and sys.argv[3] == "--kind", sys.argv
job = (RunDir if sys.argv[4] == "train" else ExportDir)(sys.argv[2])
(job.path / "cuda_visible").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
events = EventWriter(job.events)
write_json_atomic(job.status, {"state": "training" if job.kind == "train" else "exporting", **process_identity()})
if mode == "wait":
    time.sleep(120)
if job.kind == "train":
    events.write(Metrics(step=1, loss=1.0))
    result = None
else:
    job.out.mkdir()
    for path in (job.zip, job.adapter_zip):
        path.write_bytes(b"PK")
    result = {"merged": True, "out": str(job.out), "zip": str(job.zip), "adapter_zip": str(job.adapter_zip)}
write_json_atomic(job.status, {"state": "completed", **process_identity()})
events.status("completed", result=result)
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch):
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "engine.py").write_text(FAKE_ENGINE)
    (folder / "mode").write_text("finish")
    monkeypatch.setenv("WORKBENCH_ROOT", str(ROOT))
    data = tmp_path / "ws" / "uploads" / "d.jsonl"  # inside the workspace: the boundary refuses files elsewhere
    data.parent.mkdir(parents=True)
    data.write_text('{"instruction": "a", "output": "b"}\n')

    def argv(*args: str) -> list[str]:
        return [sys.executable, str(folder / "engine.py"), *args]

    def config():
        return parse_config({"model": {"name_or_path": "tiny"}, "data": {"path": str(data)},
                             "output_dir": str(tmp_path / "unused")})

    return argv, config, (lambda mode: (folder / "mode").write_text(mode))


def fake_workspace(fake, tmp_path: Path) -> AppContext:
    """A workspace whose scheduler starts the fake engine."""
    argv = fake[0]
    return AppContext.create(tmp_path / "ws", scheduler=Scheduler(tmp_path / "ws", engine=argv))


def completed_run(ctx: AppContext, config, name: str) -> str:
    """Submit a run to the fake engine and wait until it has completed; its name."""
    name, _ = ctx.runs.submit(config(), name=name)
    wait_for(lambda: ctx.runs.info(name).state == "completed")
    return name


def zombies() -> list[psutil.Process]:
    return [child for child in psutil.Process().children() if child.status() == psutil.STATUS_ZOMBIE]


def test_every_engine_process_is_reaped(fake, tmp_path):
    """Five runs started and finished through the queue and one killed with kill -9: within a few seconds of
    their exit no child of the web process is left defunct, and the killed one is failed with its reason."""
    _, config, set_mode = fake
    ctx = fake_workspace(fake, tmp_path)
    ctx.jobs.start(interval_s=0.2)
    try:
        set_mode("wait")
        ctx.runs.submit(config(), name="killed")
        pid = wait_for(lambda: ctx.runs.run_dir("killed").read_status().get("pid"))
        set_mode("finish")
        names = [ctx.runs.submit(config(), name=f"run{i}")[0] for i in range(5)]  # queued behind "killed"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: all(ctx.runs.info(name).state == "completed" for name in names))
        wait_for(lambda: not ctx.jobs.children() and not zombies(), timeout=10)
    finally:
        ctx.jobs.shutdown()
    killed = ctx.runs.info("killed")
    assert killed.state == "failed" and "SIGKILL" in killed.error
    if oom_kill_count() is not None:  # the kernel counts its OOM kills (/proc/vmstat): a kill by hand is not one
        assert "not by the out-of-memory killer" in killed.error
    assert zombies() == []


def test_an_export_is_a_job_found_again_after_a_restart(fake, tmp_path):
    argv, config, _ = fake
    workspace = tmp_path / "ws"
    ctx = AppContext.create(workspace, scheduler=Scheduler(workspace, engine=argv))
    name = completed_run(ctx, config, "trained")

    status, log, merged, adapter, job, timer = export_tab.export(ctx, name, "float16", 2)
    assert job == "trained-float16" and timer.active  # the tab follows the job while it runs
    export = ExportDir(workspace / "exports" / job)
    assert export.read_config().run_dir == str(ctx.runs.runs_dir / name)
    wait_for(lambda: ctx.jobs.tick() is not None and export.read_status().get("state") == "completed")
    ctx.jobs.wait(export, timeout=10)

    restarted = AppContext.create(workspace, scheduler=Scheduler(workspace, engine=argv))  # a new launch.py
    status, log, merged, adapter, job, timer = export_tab.show_latest(restarted, name)
    assert status.startswith("Done") and timer.active is False
    assert merged["value"] == str(export.zip) and adapter["value"] == str(export.adapter_zip)
    final = [e for e in read_events(export.events) if isinstance(e, Status)][-1]
    assert final.state == "completed" and final.result["merged"] is True


def test_a_failed_export_shows_its_reason_after_a_restart(fake, tmp_path):
    argv, config, set_mode = fake
    workspace = tmp_path / "ws"
    ctx = AppContext.create(workspace, scheduler=Scheduler(workspace, engine=argv))
    name = completed_run(ctx, config, "trained")
    set_mode("wait")
    *_, job, _ = export_tab.export(ctx, name, "float32", 2)
    export = ExportDir(workspace / "exports" / job)
    pid = wait_for(lambda: export.read_status().get("pid"))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not ctx.jobs.tick() and export.read_status().get("state") == "failed")

    restarted = AppContext.create(workspace, scheduler=Scheduler(workspace, engine=argv))
    status, *_, timer = export_tab.show_latest(restarted, name)
    assert "Export failed" in status and "SIGKILL" in status and timer.active is False


def test_the_runs_table_is_sent_only_when_a_status_changed(fake, tmp_path):
    _, config, _ = fake
    ctx = fake_workspace(fake, tmp_path)
    name = completed_run(ctx, config, "one")
    time.sleep(1.1)  # the snapshot is rescanned once it is a second old
    table, choices, listed = runs_tab.list_runs(ctx, [], -1)
    assert [row[0] for row in table["value"]["data"]] == ["one"]
    time.sleep(1.1)
    assert runs_tab.list_runs(ctx, [], listed) == (runs_tab.gr.skip(), runs_tab.gr.skip(), listed)
    ctx.runs.delete(name)
    table, choices, again = runs_tab.list_runs(ctx, [name], listed)  # changed: sent, selection dropped
    assert again != listed and table["value"]["data"] == [] and choices["value"] == []


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_the_web_process_has_one_reader_of_events():
    readers = {EventTail.__name__, "read_events"}
    using = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "webui").rglob("*.py")
                   if any(name.rsplit(".", 1)[-1] in readers for name in imported_names(path)))
    assert using == ["webui/jobs/monitor.py"]
    for path in (ROOT / "webui").rglob("*.py"):  # nobody parses engine output by looking for "{"
        assert 'startswith("{")' not in path.read_text(encoding="utf-8"), path


def test_a_damaged_job_folder_breaks_neither_the_scheduler_nor_the_list(fake, tmp_path):
    _, config, _ = fake
    ctx = fake_workspace(fake, tmp_path)
    completed_run(ctx, config, "good")
    broken = ctx.runs.runs_dir / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [unclosed\n")
    (broken / "status.json").write_text("")  # killed while the first status was written
    ctx.jobs.tick()
    rows = {info.name: info for info in ctx.runs.list()}
    assert rows["good"].state == "completed"
    assert rows["broken"].state == "failed" and "cannot be read" in rows["broken"].error
    ctx.runs.delete("broken")
    assert not broken.exists()


def test_stop_on_a_queued_run_takes_it_off_the_queue(fake, tmp_path):
    _, config, set_mode = fake
    ctx = fake_workspace(fake, tmp_path)
    set_mode("wait")
    first, _ = ctx.runs.submit(config(), name="first")
    second, queued = ctx.runs.submit(config(), name="second")
    assert queued
    ctx.runs.stop(second)
    assert ctx.runs.info(second).state == "stopped" and ctx.runs.queued() == []
    ctx.runs.cancel(first)
    assert ctx.runs.tick() is None and ctx.runs.info(second).state == "stopped"  # it never trains
    set_mode("finish")
    assert ctx.runs.rerun(second) is False  # Run again starts it
    wait_for(lambda: ctx.runs.info(second).state == "completed")


def test_stop_before_the_engine_handles_it_ends_stopped_not_failed(fake, tmp_path):
    """Stop in the first second: the engine, still importing, has no SIGTERM handler yet and dies of it."""
    _, config, set_mode = fake
    ctx = fake_workspace(fake, tmp_path)
    set_mode("wait")  # the fake engine never installs a handler
    name, _ = ctx.runs.submit(config(), name="early")
    ctx.runs.stop(name)
    wait_for(lambda: not ctx.runs.alive(name))
    ctx.runs.tick()
    info = ctx.runs.info(name)
    assert info.state == "stopped" and info.error is None
    assert ctx.runs.monitor(name).refresh().state == "stopped"


def test_the_kernels_oom_kill_count_is_read(tmp_path):
    vmstat = tmp_path / "vmstat"
    vmstat.write_text("nr_free_pages 12\noom_kill 3\npgfault 9\n")
    assert oom_kill_count(str(vmstat)) == 3
    assert oom_kill_count(str(tmp_path / "missing")) is None


def test_a_run_folder_deleted_while_it_trains_ends_its_engine_and_leaves_no_zombie(fake, tmp_path):
    """Issue 24 item 13: `rm -r` of a training run's folder. Its engine is ended (SIGTERM to its group) and reaped,
    the folder is not made again, and the device slot is free for the next run."""
    _, config, set_mode = fake
    ctx = fake_workspace(fake, tmp_path)
    ctx.jobs.start(interval_s=0.2)
    try:
        set_mode("wait")
        ctx.runs.submit(config(), name="gone")
        pid = wait_for(lambda: ctx.runs.run_dir("gone").read_status().get("pid"))
        set_mode("finish")
        after, _ = ctx.runs.submit(config(), name="after")  # queued behind "gone"
        shutil.rmtree(ctx.runs.runs_dir / "gone")
        wait_for(lambda: ctx.runs.info(after).state == "completed", timeout=10)
        wait_for(lambda: not ctx.jobs.children() and not zombies(), timeout=5)
    finally:
        ctx.jobs.shutdown()
    assert not psutil.pid_exists(pid) and not (ctx.runs.runs_dir / "gone").exists()


def test_runs_on_disjoint_devices_train_together_and_runs_on_the_same_devices_wait(fake, tmp_path):
    """Two GPUs (nvidia-smi's list faked): runs on GPU 0 and GPU 1 train at the same time, a second run on GPU 0
    waits and says for which device, a run on the CPU does not wait for the GPUs; each engine sees only its GPUs."""
    _, config, set_mode = fake
    gpus = GpuList((Gpu(0, "H100", 81559, 0), Gpu(1, "H100", 81559, 0)))
    ctx = AppContext.create(tmp_path / "ws", scheduler=Scheduler(tmp_path / "ws", engine=fake[0], gpus=lambda: gpus))
    set_mode("wait")

    def submit(name: str, devices: str) -> bool:
        run = config()
        run.devices = devices
        return ctx.runs.submit(run, name=name)[1]

    try:
        assert [submit("a", "0"), submit("b", "1"), submit("c", "0"), submit("d", "cpu")] == [False, False, True, False]
        wait_for(lambda: all(ctx.runs.info(name).state == "training" for name in "abd"))
        ctx.runs.tick()
        assert sorted(ctx.runs.training()) == ["a", "b", "d"] and ctx.runs.queued() == ["c"]
        assert ctx.runs.info("c").waits_for == "GPU 0" and ctx.jobs.devices.held["GPU 0"] == "a"
        assert ctx.runs.ahead("c") == "a"  # Start's message names the run holding its GPU, not the first training
        rows = {row[0]: row[1] for row in runs_rows(ctx.runs.list())}
        assert rows["c"] == "queued, waits for GPU 0" and rows["b"] == "training"
        ctx.runs.stop("a")  # GPU 0 is free: c starts
        wait_for(lambda: (ctx.runs.tick(), ctx.runs.info("c").state)[1] == "training")
        assert ctx.runs.info("a").state == "stopped" and ctx.runs.info("c").waits_for == ""
        visible = {name: (ctx.runs.run_dir(name).path / "cuda_visible").read_text() for name in "bcd"}
        assert visible == {"b": "1", "c": "0", "d": ""}
    finally:
        for name in "bcd":
            ctx.runs.cancel(name)
        ctx.jobs.shutdown()
