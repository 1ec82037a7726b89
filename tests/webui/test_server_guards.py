"""The server on a workspace where every job file is damaged (issue 24, item 7): `launch.py` starts and answers,
every damaged job is listed as damaged with its reason, and the scheduler's thread survives them all. One server
is started for the module (tests.browser.pages.start_server) and shared by its tests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.config import parse_config
from tests.browser.pages import start_server, stop_server
from tests.unit.test_damaged_files import DAMAGED_EVENT_LINES, DAMAGED_METRICS, DAMAGED_STATUS, write
from webui.app import build_app
from webui.context import AppContext
from webui.jobs.scheduler import EXPORT, TRAIN

GOOD_STATUS = json.dumps({"schema": 2, "state": "completed"})
DAMAGED_CONFIG = {"a list": "- 1\n", "not YAML": "a: [\n",
                  "a string": "hello\n", "a number for a section": "train: 5\n"}


def damaged_workspace(workspace: Path) -> dict[str, str]:
    """Every damaged shape in each job file of a run and of an export; name -> the file it damages."""
    data = workspace / "uploads" / "d.jsonl"
    write(data, '{"instruction": "a", "output": "b"}\n')
    config = yaml.safe_dump(parse_config({"model": {"name_or_path": "tiny"}, "data": {"path": str(data)},
                                          "output_dir": "unused"}).model_dump(mode="json"))
    damaged = {}
    for folder in (workspace / "runs", workspace / "exports"):
        for file, shapes in (("status.json", DAMAGED_STATUS), ("metrics.json", DAMAGED_METRICS),
                             ("events.jsonl", DAMAGED_EVENT_LINES), ("config.yaml", DAMAGED_CONFIG)):
            for n, text in enumerate(shapes.values()):
                job = folder / f"{file.split('.')[0]}-{n}"
                write(job / "config.yaml", config)
                write(job / "status.json", GOOD_STATUS)
                write(job / file, text + "\n" if file == "events.jsonl" else text)
                damaged[job.name] = file
    return damaged


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workspace = tmp_path_factory.mktemp("damaged")
    damaged_workspace(workspace)
    proc, url = start_server(workspace, "server-guards.log")
    yield url, workspace
    stop_server(proc)


def test_the_server_starts_on_a_workspace_of_damaged_job_files(server):
    url, workspace = server  # start_server asserts that the page answered
    assert (workspace / "runs" / "status-0").is_dir()


def test_every_damaged_job_is_listed_and_the_scheduler_goes_on(tmp_path: Path):
    ctx = AppContext.create(tmp_path / "ws")
    damaged = damaged_workspace(ctx.workspace)
    ctx.jobs.clean_leftovers()
    build_app(ctx)  # reads the runs for its choices, as launch.py does
    assert ctx.jobs.tick() == []
    rows = {info.name: info for info in ctx.runs.list()}
    for name, file in damaged.items():
        if file != "events.jsonl":  # a damaged events line is skipped by the monitor, said in its log
            assert rows[name].damaged and file in rows[name].error, (name, rows[name])
        for job in (ctx.runs.run_dir(name), ctx.exports.job(name)):
            snap = ctx.jobs.monitor(job).refresh()
            if file == "events.jsonl":
                assert "damaged line" in "\n".join(snap.log), (name, snap.log)
    assert set(ctx.jobs.statuses(EXPORT)) == set(ctx.jobs.statuses(TRAIN)) == set(damaged)
    assert ctx.exports.latest("status-0") is None
    thread = ctx.jobs.start(interval_s=0.05)
    try:
        time.sleep(0.5)  # about ten passes over every damaged job
        assert thread.is_alive()
    finally:
        ctx.jobs.shutdown()
