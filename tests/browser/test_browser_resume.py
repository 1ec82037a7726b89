"""Resume on the Runs tab in a real browser: a run killed (SIGKILL) while it saved its weights is shown failed,
with the reason; Resume continues it from its last complete checkpoint (nothing deleted, no question asked),
and it completes with its adapter. A run with no complete checkpoint is refused in an error naming Run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from engine.jobs.faults import FAULT_ENV
from tests.browser.pages import DEMO_MODEL, IDENTITY, ROOT, pick, shot
from tests.browser.test_browser_cli_runs import runs_row, toast

pytestmark = pytest.mark.browser


def killed_run(workspace, name: str, fault: str) -> None:
    """Train 4 steps (checkpoints at 2 and 4) into WORKSPACE/runs/NAME; the engine kills itself at `fault`."""
    config = {"model": {"name_or_path": str(DEMO_MODEL)}, "method": {"name": "lora", "r": 8},
              "data": {"path": str(IDENTITY)},
              "train": {"max_steps": 4, "batch_size": 2, "cutoff_len": 128, "save_steps": 2},
              "output_dir": str(workspace / "runs" / name)}
    path = workspace / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run([sys.executable, "launch.py", "train", str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", FAULT_ENV: fault})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def test_resume_continues_a_killed_run_and_refuses_one_without_a_checkpoint(page, server):
    _, workspace = server
    killed_run(workspace, "crashed", "final-save")
    killed_run(workspace, "early", "checkpoint:2")
    page.get_by_role("tab", name="Runs").click()
    runs_row(page, "crashed", "failed")  # the scheduler judged the dead engine
    runs_row(page, "early", "failed")

    pick(page, "#wb-runs-select", "early")
    page.click("#wb-runs-resume")
    page.wait_for_selector("[data-testid=toast-body].error:has-text('no complete checkpoint')")
    assert "Run again" in page.locator("[data-testid=toast-body].error").first.inner_text()

    page.click("#wb-runs-select .token:has-text('early') .token-remove")
    pick(page, "#wb-runs-select", "crashed")
    page.click("#wb-runs-resume")
    toast(page, "resumes from its last complete checkpoint")
    runs_row(page, "crashed", "completed")
    run = workspace / "runs" / "crashed"
    assert (run / "adapter" / "adapter_config.json").is_file()
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    messages = [e.get("message", "") for e in events]
    assert "resuming from checkpoint-4" in messages and any("is the last step" in m for m in messages), messages
    assert max(e["step"] for e in events if e["kind"] == "progress") == 4  # no step past max_steps
    page.wait_for_selector(".wb-progress[data-state='completed'] >> visible=true")  # the view's next tick
    progress = page.locator(".wb-progress >> visible=true").first.inner_text()
    assert "completed" in progress and "gone without a final status" not in progress, progress
    shot(page, "runs-resumed")
