"""A run started from the command line into the served workspace, with the page open: the page shows it
training (never failed), a Start on the page waits in the queue until it has ended, Stop on the page stops
it, and Run again on the Runs tab starts the stopped run afresh (after asking)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.browser.pages import DEMO_MODEL, IDENTITY, ROOT, pick, set_number, shot

pytestmark = pytest.mark.browser


class Watch(threading.Thread):
    """Reads every run's status.json twenty times a second and notes each state; after each round it looks at
    the command-line process, so a run seen started while that process still lives did start before it ended."""

    def __init__(self, runs: Path, pid: int):
        super().__init__(daemon=True)
        self.runs, self.cli = runs, psutil.Process(pid)
        self.seen: dict[str, list[str]] = {}
        self.started_beside_cli: list[str] = []  # runs seen past "queued" while the command-line run lived
        self.done = threading.Event()

    def cli_alive(self) -> bool:
        try:
            return self.cli.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def run(self) -> None:
        while not self.done.is_set():
            states = {}
            for status in self.runs.glob("*/status.json"):
                try:
                    states[status.parent.name] = json.loads(status.read_text())["state"]
                except (OSError, ValueError, KeyError):
                    continue  # replaced or deleted between glob and read
            if self.cli_alive():
                self.started_beside_cli += [n for n, s in states.items() if n != "cli-run" and s != "queued"]
            for name, state in states.items():
                if self.seen.setdefault(name, [None])[-1] != state:
                    self.seen[name].append(state)
            time.sleep(0.05)


def cli_config(workspace: Path, name: str) -> Path:
    """A run that trains until stopped, into WORKSPACE/runs/NAME, as the page's config preview would write it."""
    config = {
        "model": {"name_or_path": str(DEMO_MODEL)},
        "method": {"name": "lora", "r": 8, "target_modules": "all-linear"},
        "data": {"path": str(IDENTITY)},
        "train": {"max_steps": 5000, "batch_size": 2, "cutoff_len": 128, "save_steps": 5000},
        "output_dir": str(workspace / "runs" / name),
    }
    path = workspace / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def wait_for_state(run: Path, states: tuple[str, ...], timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = json.loads((run / "status.json").read_text()) if (run / "status.json").is_file() else {}
        if status.get("state") in states:
            return status["state"]
        time.sleep(0.2)
    raise AssertionError(f"{run.name} did not reach {states} in {timeout} s: {status}")


def wait_for_engine(run: Path, timeout: float = 300) -> int:
    """The pid of the engine that has taken up `run` (its first status carries its pid)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid = json.loads((run / "status.json").read_text()).get("pid")
        if pid:
            return pid
        time.sleep(0.1)
    raise AssertionError(f"no engine took up {run.name} in {timeout} s")


def toast(page, text: str) -> None:
    page.wait_for_selector(f"[data-testid=toast-body]:has-text('{text}')")


def runs_row(page, name: str, state: str) -> None:
    row = f"#wb-runs [role=row]:has-text('{name}'):has-text('{state}') >> visible=true"  # the grid's visible rows
    page.wait_for_selector(row, timeout=300_000)


def test_command_line_run_is_followed_queued_behind_and_run_again(page, server):
    url, workspace = server
    runs = workspace / "runs"
    cli_run = runs / "cli-run"
    process = subprocess.Popen([sys.executable, "launch.py", "train", str(cli_config(workspace, "cli-run"))],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watch = Watch(runs, process.pid)
    watch.start()
    try:
        # The open page follows the command-line run as the one that trains.
        page.wait_for_selector("#wb-progress:has-text('cli-run')", timeout=60_000)
        page.wait_for_selector("#wb-progress [data-state='training']", timeout=300_000)
        page.get_by_role("tab", name="Runs").click()
        runs_row(page, "cli-run", "training")

        # Start on the page while it trains: queued behind it, not a second training.
        page.get_by_role("tab", name="Train").click()
        page.locator("#f-ui-stop-by label", has_text="steps").click()
        set_number(page, "f-train-max-steps", "3")
        page.click("#wb-start")
        toast(page, "queued")
        page_run = next(p for p in runs.iterdir() if p.name != "cli-run")
        time.sleep(3)  # three scheduler ticks
        assert json.loads((page_run / "status.json").read_text())["state"] == "queued"
        assert process.poll() is None
        shot(page, "cli-run-training")

        # Stop on the Runs tab stops the command-line run (it saves and exits 0); then the queued run starts.
        page.get_by_role("tab", name="Runs").click()
        pick(page, "#wb-runs-select", "cli-run")
        page.click("#wb-runs-stop")
        assert process.wait(timeout=120) == 0, process.stderr.read()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert wait_for_state(cli_run, ("stopped",)) == "stopped"
    wait_for_state(page_run, ("starting", "loading_data", "loading_model", "training", "saving", "completed"))
    assert watch.started_beside_cli == [], watch.seen
    assert "failed" not in watch.seen["cli-run"], watch.seen
    runs_row(page, "cli-run", "stopped")

    # Run again asks first (it deletes the outputs), then queues the stopped run behind the page's run.
    checkpoint = next((cli_run / "checkpoints").iterdir())
    page.click("#wb-runs-rerun")
    page.wait_for_selector("#wb-runs-rerun-confirm-question:has-text('cli-run')")
    assert checkpoint.exists()  # nothing is deleted before Yes
    shot(page, "cli-run-run-again")
    page.click("#wb-runs-rerun-confirm-yes")
    toast(page, "again")
    assert not checkpoint.exists()
    events_file = cli_run / "events.jsonl"  # gone, or already the new attempt's where the page's run had ended
    assert not events_file.exists() or '"stopped"' not in events_file.read_text()
    # the Runs tab shows the new attempt: queued behind the page's run, or started where that run had ended
    page.wait_for_selector(".wb-progress:is([data-state='queued'], [data-state='starting'], "
                           "[data-state='loading_data'], [data-state='loading_model'], [data-state='training'])"
                           " >> visible=true")

    # It starts afresh once the page's run is over: a new events file, followed by the page.
    wait_for_state(page_run, ("completed",))
    pid = wait_for_engine(cli_run)
    page.wait_for_selector(".wb-progress:is([data-state='starting'], [data-state='loading_data'], "
                           "[data-state='loading_model'], [data-state='training']) >> visible=true")
    events = [json.loads(line) for line in (cli_run / "events.jsonl").read_text().splitlines()]
    assert events[0]["kind"] == "status" and events[0]["state"] == "starting"
    assert not [e for e in events if e.get("state") == "stopped"]
    os.killpg(pid, signal.SIGKILL)  # not another long training
    assert wait_for_state(cli_run, ("failed",)) == "failed"
    watch.done.set()
