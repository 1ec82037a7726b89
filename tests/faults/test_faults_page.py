"""Faults through the page's own path: a run the scheduler started is killed (SIGKILL) while it writes a
checkpoint; the page records it failed with the reason, and the Runs tab's Resume continues it from the
checkpoint before, without a hand edit, losing only the steps since then. Resume refuses, in a sentence, a run
with no complete checkpoint; Run again still starts it afresh."""

from __future__ import annotations

import shutil

import pytest

from engine.config import parse_config
from engine.jobs.events import Log, Progress, read_events
from engine.jobs.faults import FAULT_ENV
from tests.cli import MEMORISE, write_rows
from tests.polling import wait_for
from webui.context import AppContext
from webui.jobs.runs import RunError
from webui.tabs.runs.run_again import resume_selected


@pytest.fixture
def workspace_run(tiny_model, tmp_path, monkeypatch):
    """A workspace whose model and dataset are inside it, and the config of a 4-step run with checkpoints at 2
    and 4 that the engine kills itself in checkpoint-4."""
    ctx = AppContext.create(tmp_path / "ws")
    model = ctx.workspace / "models" / "tiny"
    shutil.copytree(tiny_model, model)
    data = write_rows(ctx.uploads / "memorise.json", MEMORISE)
    config = parse_config({"model": {"name_or_path": str(model)}, "method": {"name": "lora", "r": 4},
                           "data": {"path": str(data)},
                           "train": {"max_steps": 4, "save_steps": 2, "batch_size": 2, "learning_rate": 1e-3},
                           "output_dir": str(tmp_path / "unused")})
    monkeypatch.setenv(FAULT_ENV, "checkpoint:4")  # the scheduler's engine processes inherit it
    return ctx, config, monkeypatch


def ended(ctx: AppContext, name: str) -> str | None:
    ctx.jobs.tick()
    state = ctx.runs.info(name).state
    return state if state in ("completed", "failed", "stopped") else None


def test_resume_on_the_runs_tab_continues_a_killed_run_from_its_last_complete_checkpoint(workspace_run):
    ctx, config, monkeypatch = workspace_run
    name, _ = ctx.runs.submit(config, name="killed")
    assert wait_for(lambda: ended(ctx, name), timeout=180) == "failed"
    info = ctx.runs.info(name)
    assert "SIGKILL" in info.error and not info.damaged
    run = ctx.runs.run_dir(name)
    assert run.last_checkpoint().name == "checkpoint-2" and run.weights_dir() is None

    monkeypatch.delenv(FAULT_ENV)
    before = len(read_events(run.events))
    resume_selected(ctx, [name])
    assert wait_for(lambda: ended(ctx, name), timeout=180) == "completed"
    events = read_events(run.events)[before:]
    assert ("checkpoint-4 is incomplete (killed while it was written): removed; resuming from checkpoint-2"
            in [e.message for e in events if isinstance(e, Log)])
    assert [e.step for e in events if isinstance(e, Progress)] == [3, 4]  # only the steps since checkpoint-2
    assert run.weights_dir() == run.adapter
    assert ctx.runs.monitor(name).refresh().step == 4


def test_resume_without_a_complete_checkpoint_says_to_run_again(workspace_run):
    ctx, config, monkeypatch = workspace_run
    monkeypatch.setenv(FAULT_ENV, "checkpoint:2")  # killed in its first checkpoint: nothing to resume from
    name, _ = ctx.runs.submit(config, name="early")
    assert wait_for(lambda: ended(ctx, name), timeout=180) == "failed"
    with pytest.raises(RunError, match="no complete checkpoint to resume from .* use Run again"):
        ctx.runs.resume(name)
    monkeypatch.delenv(FAULT_ENV)
    assert ctx.runs.rerun(name) is False
    assert wait_for(lambda: ended(ctx, name), timeout=180) == "completed"
