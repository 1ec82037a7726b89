"""The server on a workspace where every job file is damaged (issue 24, item 7): `launch.py` starts and answers,
every damaged job is listed as damaged with its reason, and the scheduler's thread survives them all; and the same
server refuses requests addressed to a host that is not its own (item 8, DNS rebinding). One server is started
for the module (tests.browser.pages.start_server) and shared by its tests."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.config import parse_config
from engine.serve.hosts import HostGuard, request_host
from tests.browser.pages import ARTIFACTS, start_server, stop_server
from tests.unit.test_damaged_files import DAMAGED_EVENT_LINES, DAMAGED_METRICS, DAMAGED_STATUS, write
from webui.app import build_app
from webui.context import AppContext
from webui.jobs.scheduler import EXPORT, TRAIN
from webui.options import parse_args

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


SERVER_LOG = ARTIFACTS / "server-guards.log"
TERMINAL: dict[str, int] = {}  # where this module's server's lines start in SERVER_LOG (appended to)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workspace = tmp_path_factory.mktemp("damaged")
    damaged_workspace(workspace)
    TERMINAL["start"] = SERVER_LOG.stat().st_size if SERVER_LOG.is_file() else 0
    proc, url = start_server(workspace, SERVER_LOG.name)
    yield url, workspace
    stop_server(proc)


def test_the_terminal_names_the_products_share_option(server):
    """What `python launch.py` prints once it serves: the local URL, and `--share` for a public link, never gradio's
    own hint (set `share=True` in `launch()`), which a person starting launch.py has no way to follow."""
    url, _ = server
    deadline = time.time() + 30
    while "--share" not in (said := SERVER_LOG.read_bytes()[TERMINAL["start"]:].decode(errors="replace")):
        assert time.time() < deadline, said[-2000:]
        time.sleep(0.2)
    assert f"* Running on local URL:  {url}\n" in said
    assert "* To create a public link, start it with `python launch.py --share`" in said
    assert "share=True" not in said and "launch()" not in said, said


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


def request(url: str, path: str, host: str, method: str = "GET") -> tuple[int, str]:
    """(status, body) of a raw request to the server with this Host header (as a rebound DNS name sends it)."""
    port = int(url.rpartition(":")[2])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = b'{"data": [], "fn_index": 0, "session_hash": "x"}' if method == "POST" else None
        connection.request(method, path, body=body, headers={"Host": host, "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "127.0.0.1.evil.example", "10.0.0.1"])
def test_a_request_for_another_host_is_refused(server, host: str):
    """DNS rebinding (issue 24, item 8): a page whose own name resolves to 127.0.0.1 can neither read the page, nor
    start a run through the queue, nor download a workspace file."""
    url, workspace = server
    file = f"/gradio_api/file={workspace / 'runs' / 'status-0' / 'config.yaml'}"
    for method, path in (("GET", "/"), ("POST", "/gradio_api/queue/join"), ("GET", file)):
        status, body = request(url, path, host, method)
        assert status == 403, (method, path, status, body)
        assert "--allow-host" in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "127.0.0.1"])
def test_a_request_for_a_loopback_host_is_answered(server, host: str):
    url, workspace = server
    host = host.format(port=url.rpartition(":")[2])
    assert request(url, "/", host)[0] == 200
    assert request(url, f"/gradio_api/file={workspace / 'runs' / 'status-0' / 'config.yaml'}", host)[0] == 200
    assert request(url, "/gradio_api/queue/join", host, "POST")[0] != 403


def test_the_host_guard_answers_the_hosts_it_is_told():
    """--host and --allow-host (webui.options) are answered besides loopback names; with --share, its link's."""
    guard = HostGuard(None, hosts=("0.0.0.0", "Box.Lan", "[fd00::1]:7860"))
    for host in ("0.0.0.0:7860", "box.lan", "BOX.LAN:80", "[fd00::1]:7860", "127.0.0.2", "localhost"):
        assert guard.allows(request_host(host)), host
    for host in ("evil.example", "box.lan.evil.example", "", "abc.gradio.live"):
        assert not guard.allows(request_host(host)), host
    assert HostGuard(None, share=True).allows("abc.gradio.live")
    args = parse_args(["--allow-host", "a.lan", "--allow-host", "b.lan", "--host", "0.0.0.0"])
    assert args.allow_host == ["a.lan", "b.lan"] and args.host == "0.0.0.0"
