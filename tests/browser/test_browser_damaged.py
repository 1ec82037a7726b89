"""A damaged workspace in a real browser (issue 11, defect 5): the server starts on it, the Runs tab lists
each damaged entry with its reason, the Chat and Export tabs still answer, and the page deletes them all
(a symlinked run's link, never what it points to)."""

from __future__ import annotations

import os
import time

import pytest

from tests.browser.pages import open_page, pick, share_engine_answers, shot, start_server, stop_server
from tests.browser.test_browser_runs import error_toasts
from webui.jobs.scheduler import START_GRACE_S

pytestmark = pytest.mark.browser

DAMAGED = ("empty-status", "bad-config", "linked", "no-config", "never-started")


def make_damaged_workspace(workspace, outside) -> None:
    runs = workspace / "runs"
    runs.mkdir(parents=True)
    outside.mkdir()
    (outside / "status.json").write_text('{"state": "completed"}')
    for name in ("empty-status", "bad-config", "no-config", "never-started"):
        (runs / name).mkdir()
    (runs / "empty-status" / "status.json").write_text("")  # a process killed while writing its first status
    (runs / "empty-status" / "config.yaml").write_text("model: {name_or_path: x}\n")
    (runs / "bad-config" / "status.json").write_text('{"state": "completed"}')
    (runs / "bad-config" / "config.yaml").write_text("model: [unclosed\n")
    (runs / "no-config" / "status.json").write_text('{"state": "failed"}')
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    past = time.time() - START_GRACE_S - 5
    os.utime(runs / "never-started", (past, past))
    (workspace / "exports").mkdir()
    (workspace / "exports" / "linked-float32").symlink_to(outside, target_is_directory=True)


def test_a_damaged_workspace_starts_lists_and_deletes(browser, tmp_path, engine_answers):  # noqa: F811
    workspace = tmp_path / "ws"
    make_damaged_workspace(workspace, tmp_path / "outside")
    share_engine_answers(workspace, engine_answers)  # the page's opening inspection, as the other modules'
    proc, url = start_server(workspace, "server-damaged.log")
    try:
        page = open_page(browser, url)
        page.get_by_role("tab", name="Runs").click()
        table = page.locator("#wb-runs")
        for name in DAMAGED:
            page.wait_for_selector(f"#wb-runs:has-text('{name}')")
        assert table.inner_text().count("damaged:") == len(DAMAGED), table.inner_text()
        assert "symbolic link" in table.inner_text() and "config.yaml cannot be read" in table.inner_text()
        shot(page, "runs-damaged")

        for tab in ("Chat", "Export", "Runs"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(1500)
        assert not error_toasts(page), error_toasts(page)

        for name in DAMAGED:
            pick(page, "#wb-runs-select", name)
        page.click("#wb-runs-delete")
        page.click("#wb-runs-confirm-yes")
        page.wait_for_selector("[data-testid=toast-body].info:has-text('Deleted')")
        page.wait_for_function("() => !document.querySelector('#wb-runs').innerText.includes('damaged')")
        assert sorted(p.name for p in (workspace / "runs").iterdir()) == []
        assert (tmp_path / "outside" / "status.json").is_file()  # the link went, not its target
        assert not error_toasts(page), error_toasts(page)
        page.context.close()
    finally:
        stop_server(proc)
