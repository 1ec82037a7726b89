"""A damaged workspace never takes the page down (issue 11, defects 3 and 5): a symlinked run, a folder
the engine never wrote, an unreadable status.json or config.yaml are each listed as damaged, with the
reason, and deleted from the page; nothing in one entry breaks another's listing; partial folders and zips
that killed engine processes left are removed, a live writer's kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.jobs.outputs import clean_leftovers, clean_stale_partials
from tests.polling import wait_for
from tests.webui.test_jobs import completed_run, fake, fake_workspace  # noqa: F401 (fake: a fixture)
from webui.components.render import runs_rows
from webui.context import AppContext
from webui.jobs.runs import RunError
from webui.jobs.scheduler import START_GRACE_S
from webui.tabs import export as export_tab
from webui.tabs.chat_loaded import finished_runs
from webui.tabs.runs import tab as runs_tab


def aged(path: Path) -> Path:
    """Pretend `path` was made before the scheduler's start grace (a folder being queued is not judged)."""
    past = time.time() - START_GRACE_S - 5
    os.utime(path, (past, past))
    return path


def damaged_workspace(ctx: AppContext, outside: Path) -> dict[str, Path]:
    runs = ctx.runs.runs_dir
    outside.mkdir()
    (outside / "status.json").write_text('{"state": "completed"}')
    (outside / "config.yaml").write_text("model: {name_or_path: /secret}\n")
    entries = {name: runs / name for name in ("empty-status", "bad-config", "linked", "no-config", "never-started",
                                               "young")}
    for name in ("empty-status", "bad-config", "no-config", "never-started", "young"):
        entries[name].mkdir()
    (entries["empty-status"] / "status.json").write_text("")
    (entries["empty-status"] / "config.yaml").write_text("model: {name_or_path: x}\n")
    (entries["bad-config"] / "status.json").write_text('{"state": "completed"}')
    (entries["bad-config"] / "config.yaml").write_text("model: [unclosed\n")
    (entries["no-config"] / "status.json").write_text('{"state": "failed"}')
    entries["linked"].symlink_to(outside, target_is_directory=True)
    aged(entries["never-started"])  # a folder nobody wrote a status into, long ago
    (runs / ".hidden").mkdir()  # not a run (hidden)
    (runs / "stray.txt").write_text("not a run")
    (ctx.exports.exports_dir / "linked-float32").symlink_to(outside, target_is_directory=True)
    return entries


def test_damaged_runs_are_listed_with_the_reason_and_deleted(fake, tmp_path):  # noqa: F811
    _, config, _ = fake
    ctx = fake_workspace(fake, tmp_path)
    name = completed_run(ctx, config, "good")
    entries = damaged_workspace(ctx, tmp_path / "outside")
    ctx.jobs.tick()

    rows = {info.name: info for info in ctx.runs.list()}
    assert set(rows) == {"good", "empty-status", "bad-config", "linked", "no-config", "never-started"}  # not young
    assert not rows["good"].damaged and rows["good"].state == "completed"
    reasons = {name: rows[name].error for name in rows if rows[name].damaged}
    assert set(reasons) == set(rows) - {"good"}, reasons
    assert "status.json cannot be read" in reasons["empty-status"]
    assert "config.yaml cannot be read" in reasons["bad-config"]
    assert "symbolic link" in reasons["linked"]
    assert "no config.yaml" in reasons["no-config"]
    assert "no status.json" in reasons["never-started"]
    table = {row[0]: row[1] for row in runs_rows(list(rows.values()))}
    assert table["linked"].startswith("damaged: ") and table["good"] == "completed"

    # The tabs that list runs or exports still answer.
    runs_tab.redraw_runs(ctx, [])
    (ctx.runs.runs_dir / "good" / "adapter").mkdir()
    (ctx.runs.runs_dir / "good" / "adapter" / "adapter_config.json").write_text("{}")
    (ctx.runs.runs_dir / "good" / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    assert finished_runs(ctx) == ["good"]  # the chat tab offers only runs with weights, never a damaged one
    assert export_tab.show_latest(ctx, "linked") is not None
    ctx.exports.latest("good")  # a symlinked export folder is skipped, not followed

    for name in rows.keys() - {"good"}:
        ctx.runs.delete(name)
    assert sorted(p.name for p in ctx.runs.runs_dir.iterdir()) == [".hidden", "good", "stray.txt", "young"]
    assert (tmp_path / "outside" / "status.json").is_file()  # the link was removed, not what it points to
    assert [info.name for info in ctx.runs.list()] == ["good"]
    assert entries["young"].is_dir()


def test_a_symlinked_run_is_never_followed_by_actions(fake, tmp_path):  # noqa: F811
    ctx = fake_workspace(fake, tmp_path)
    damaged_workspace(ctx, tmp_path / "outside")
    for action in (ctx.runs.rerun, ctx.runs.stop, ctx.runs.monitor, ctx.runs.run_dir):
        with pytest.raises(RunError, match="symbolic link"):
            action("linked")
    assert (tmp_path / "outside" / "config.yaml").read_text() == "model: {name_or_path: /secret}\n"


def test_leftovers_of_killed_writers_are_removed_and_a_live_writers_kept(tmp_path):
    job = tmp_path / "exports" / "run-float32"
    job.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    for name in (f".model.partial-{dead}", f".model.old-{dead}"):
        (job / name).mkdir()
        (job / name / "model.safetensors").write_bytes(b"x" * 1000)
    (job / f".run-float32.zip.partial-{dead}").write_bytes(b"PK")
    (job / f".run-float32-adapter.zip.partial-{dead}").write_bytes(b"PK")
    live = job / f".model.partial-{os.getpid()}"
    live.mkdir()
    (job / "model").mkdir()
    (job / ".notes").write_text("a user's hidden file")

    assert {p.name for p in clean_stale_partials(job / "model")} == {f".model.partial-{dead}", f".model.old-{dead}"}
    assert (job / f".run-float32.zip.partial-{dead}").exists()  # not a sibling named to that call
    removed = clean_leftovers(job)
    assert {p.name for p in removed} == {f".run-float32.zip.partial-{dead}", f".run-float32-adapter.zip.partial-{dead}"}
    assert sorted(p.name for p in job.iterdir()) == [".model.partial-" + str(os.getpid()), ".notes", "model"]


def test_the_server_start_and_a_new_export_clean_what_a_killed_export_left(fake, tmp_path):  # noqa: F811
    _, config, _ = fake
    ctx = fake_workspace(fake, tmp_path)
    completed_run(ctx, config, "good")
    job = ctx.exports.exports_dir / "good-float32"
    job.mkdir()
    dead = 2**22 + 12345  # above the default pid_max: no process has it
    leftover = job / f".good-float32.zip.partial-{dead}"
    leftover.write_bytes(b"x" * 4096)
    run_leftover = ctx.runs.runs_dir / "good" / f".adapter.partial-{dead}"
    run_leftover.mkdir()
    assert set(ctx.jobs.clean_leftovers()) == {leftover, run_leftover}

    leftover.write_bytes(b"x")
    started = ctx.exports.start(ctx.runs.run_dir("good"), "float32", 2)
    assert not leftover.exists()
    wait_for(lambda: ctx.exports.follow(started).state == "completed")
