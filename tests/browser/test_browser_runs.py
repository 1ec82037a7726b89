"""The Runs tab and the Train tab's Cancel in a real browser: overlaid runs each draw their curve in their
own colour with their name in the legend; Delete and Cancel ask first, naming what goes, and say so
when it is gone (an info, never an error), and the Chat and Export tabs no longer offer a deleted run."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.pages import chart_lines, make_run, pick, shot

pytestmark = pytest.mark.browser

STEPS = 6  # enough points for a curve; each run trains on the demo model through the command line

CHART = chart_lines("#wb-runs-loss")


@pytest.fixture(scope="module")
def runs(server) -> list[str]:
    _, workspace = server
    return [make_run(workspace, name, steps=STEPS).name for name in ("alpha", "beta")]


def wait_for_chart(page, legend: list[str]) -> dict:
    """Wait until the chart's legend is `legend` and each of its series is a visible line of every step."""
    try:
        page.wait_for_function(f"""([legend, steps]) => {{
            const chart = ({CHART})();
            return chart.legend.join('|') === legend.join('|') && chart.lines.length === legend.length
                && chart.lines.every(line => line.stroke && line.stroke !== 'none' && line.points === steps);
        }}""", arg=[legend, STEPS], timeout=90_000)
    except PlaywrightTimeout:
        raise AssertionError(f"expected the curves {legend}, the chart shows {page.evaluate(CHART)}") from None
    return page.evaluate(CHART)


def error_toasts(page) -> list[str]:
    return page.locator("[data-testid=toast-body].error").all_inner_texts()


def open_runs_tab(page, names: list[str]) -> None:
    page.get_by_role("tab", name="Runs").click()
    for name in names:
        page.wait_for_selector(f"#wb-runs:has-text('{name}')")


@pytest.mark.usefixtures("runs")  # the runs table already lists two runs when this one starts
def test_cancel_asks_first_and_reports_success(shared_page, server):
    page = shared_page  # the first of the module's tests on this page, which all three share: the page as it opens
    _, workspace = server
    page.click("#wb-start")  # the starting form: LoRA on the demo model
    page.wait_for_function("() => document.querySelector('#wb-progress b')?.innerText.trim()", timeout=120_000)
    name = page.locator("#wb-progress b").first.inner_text().strip()
    run = workspace / "runs" / name
    assert run.is_dir()

    page.click("#wb-cancel")
    question = page.locator("#wb-cancel-confirm-question")
    question.wait_for()
    assert name in question.inner_text() and "deleted" in question.inner_text()
    assert run.is_dir()  # asking changes nothing
    page.click("#wb-cancel-confirm-no")
    page.wait_for_selector("#wb-cancel-confirm", state="hidden")
    assert run.is_dir()

    page.click("#wb-cancel")
    page.click("#wb-cancel-confirm-yes")
    page.wait_for_selector(f"[data-testid=toast-body].info:has-text('Cancelled {name}')")
    page.wait_for_selector("#wb-cancel-confirm", state="hidden")
    assert not run.exists()
    page.wait_for_timeout(3000)  # a tick of the live view that still names the run must not raise either
    assert not error_toasts(page), error_toasts(page)


def test_overlaid_runs_each_draw_their_curve(runs, shared_page):
    page = shared_page  # as the Cancel test left it: no run followed
    open_runs_tab(page, runs)
    pick(page, "#wb-runs-select", "alpha")
    wait_for_chart(page, ["train"])
    pick(page, "#wb-runs-select", "beta")
    chart = wait_for_chart(page, ["alpha · train", "beta · train"])  # was: axes only, legend "train"
    assert len({line["stroke"] for line in chart["lines"]}) == 2, chart  # one colour per run
    shot(page, "runs-overlay")
    page.click("#wb-runs-select .token:has-text('alpha') .token-remove")  # back to one run: named "train" again
    wait_for_chart(page, ["train"])


def test_delete_asks_first_and_reports_success(runs, shared_page, server):
    page = shared_page  # as the overlay test left it: beta chosen on the Runs tab
    _, workspace = server
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    open_runs_tab(page, runs)
    if not page.locator("#wb-runs-select .token:has-text('beta')").count():  # choosing it again would unchoose it
        pick(page, "#wb-runs-select", "beta")
    page.click("#wb-runs-delete")
    question = page.locator("#wb-runs-confirm-question")
    question.wait_for()
    assert "beta" in question.inner_text() and "alpha" not in question.inner_text()
    page.click("#wb-runs-confirm-no")
    page.wait_for_selector("#wb-runs-confirm", state="hidden")
    assert (workspace / "runs" / "beta").is_dir()  # declined: kept

    page.click("#wb-runs-delete")
    page.click("#wb-runs-confirm-yes")
    page.wait_for_selector("[data-testid=toast-body].info:has-text('Deleted beta')")
    page.wait_for_function("() => !document.querySelector('#wb-runs').innerText.includes('beta')")
    assert not (workspace / "runs" / "beta").exists()
    page.wait_for_timeout(4000)  # two ticks of the Runs tab's timer, which still had beta selected
    assert not error_toasts(page), error_toasts(page)  # was: "There is no run named beta."
    shot(page, "runs-deleted")

    # The Chat and Export tabs list the runs as they are now, each once (their lists were refreshed while open:
    # the deleted run was still offered, another doubled, and the page threw).
    for tab, dropdown in (("Chat", "#wb-chat-run"), ("Export", "#wb-export-run")):
        page.get_by_role("tab", name=tab).click()
        page.locator(f"{dropdown} input").click()
        page.wait_for_selector("[role=option]:has-text('alpha')")
        page.wait_for_timeout(1500)  # any late refresh of the open list
        options = page.locator("[role=option]").all_inner_texts()
        assert "beta" not in options and len(options) == len(set(options)), (tab, options)
        page.keyboard.press("Escape")
    assert not page_errors, page_errors
