"""The Evaluate tab in a real browser: pick the base and a finished run, run the evaluation (an engine job the page
queues and follows), see the metrics table with the best per column marked, the CSV, and the row view with its
filter; after a reload the tab shows the same evaluation's results again.

One server and one short run (2 steps through the CLI: its answers need not be good, only there) serve the module;
the evaluation is kept small (3 rows, 8 new tokens, no general prompts) so that it takes seconds on the demo model.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from engine.compare.table import COLUMNS
from tests.browser.pages import make_run, pick, set_number, shot

pytestmark = pytest.mark.browser

RUN = "eval-demo"
ROWS, TOKENS = 3, 8


@pytest.fixture(scope="module")
def run(server) -> str:
    make_run(server[1], RUN, steps=2, method={"r": 4, "lora_alpha": 8})
    return RUN


def table_rows(page) -> dict[str, list[str]]:
    """model -> the cells of its row in the metrics table."""
    found = {}
    for row in page.locator("#wb-eval-table tbody tr").all():
        texts = [cell.inner_text().strip() for cell in row.locator("td").all()]
        found[texts[0]] = texts[1:]
    return found


def shown_rows(page) -> int:
    """The rows the row view's grid shows (its header row included)."""
    return page.locator("#wb-eval-rows-view [role=row] >> visible=true").count()


def test_evaluate_base_against_a_run_shows_the_table_and_the_rows(run, shared_page, server):
    url, workspace = server
    page = shared_page  # opened after the run exists (the fixture run comes first): the tab lists it
    page.get_by_role("tab", name="Evaluate").click()
    pick(page, "#wb-eval-models", run)  # base is chosen already
    pick(page, "#wb-eval-data", "identity_alpaca.json")
    set_number(page, "wb-eval-rows", str(ROWS))
    set_number(page, "wb-eval-tokens", str(TOKENS))
    page.locator("#wb-eval-general input").uncheck()  # the built-in general prompts: not this test's subject
    page.click("#wb-eval-start")
    page.locator("#wb-eval-table table").wait_for(timeout=300_000)  # minutes only on a loaded machine
    shot(page, "evaluate")

    rows = table_rows(page)
    assert list(rows) == ["base", run]
    headers = [cell.inner_text().strip() for cell in page.locator("#wb-eval-table thead th").all()]
    assert headers[:6] == ["model", "loss", "ppl", "exact match", "ROUGE-L", "BLEU"]
    marked = page.locator("#wb-eval-table strong.wb-best")
    assert marked.count() >= 2 and "★" in marked.first.inner_text()  # loss and ppl have a best at least

    job = next((workspace / "evals").iterdir())
    metrics = json.loads((job / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["rows"] == ROWS and list(metrics["models"]) == ["base", run]
    assert rows["base"][0].rstrip(" ★") == f"{metrics['models']['base']['loss']:.4f}"  # the page shows the file
    config_text = (job / "config.yaml").read_text(encoding="utf-8")
    assert f"max_new_tokens: {TOKENS}" in config_text and "general: false" in config_text

    view = page.locator("#wb-eval-rows-view")
    predictions = [json.loads(line) for line in (job / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(predictions) == ROWS
    for column in ("prompt", "reference", "base", run):
        assert view.get_by_text(column, exact=True).count() >= 1
    assert view.get_by_text(predictions[0]["reference"]).count() >= 1

    with page.expect_download() as download:
        page.click("#wb-eval-csv")
    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert table[0][:2] == ["model", "loss"] and [row[0] for row in table[1:]] == ["base", run]

    differ = sum(any(text.strip() != line["answers"]["base"].strip() for name, text in line["answers"].items()
                     if name != "base") for line in predictions)
    before = shown_rows(page)
    page.locator("#wb-eval-differ input").check()
    wanted = before - (ROWS - differ)  # the rows where every tuned answer is the base's leave the view
    deadline = time.time() + 30
    while shown_rows(page) != wanted and time.time() < deadline:
        page.wait_for_timeout(250)
    assert shown_rows(page) == wanted

    page.reload()  # the tab asks the manager for the newest evaluation on load
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#wb-eval-table table").wait_for(timeout=30_000)
    assert list(table_rows(page)) == ["base", run]


def test_a_test_set_of_unknown_columns_is_mapped_under_columns_and_evaluated(run, shared_page, server):
    """A `question,answer` CSV: the Columns group opens by itself saying why, the picks read the file again, and the
    evaluation reads it mapped (its data.columns)."""
    url, workspace = server
    page = shared_page  # on the Evaluate tab, base and the run chosen, as the test before left it (reloaded)
    (workspace / "uploads" / "qa.csv").write_text(
        "question,answer\nWho are you?,I am Aria.\nYour name?,Aria.\nWho made you?,Ada Labs.\n", encoding="utf-8")
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("tab", name="Evaluate").click()  # the tab lists the workspace's files again
    pick(page, "#wb-eval-data", "qa.csv")
    note = page.locator("#wb-eval-columns-note")
    note.filter(has_text="match no format").wait_for(timeout=120_000)
    assert "under Columns" in note.inner_text()
    pick(page, "#wb-eval-column-prompt", "question")
    pick(page, "#wb-eval-column-response", "answer")
    # read mapped: no refusal left (a regular expression: has_text ignores case, and the refusal says "which column")
    note.filter(has_text=re.compile("Which column of qa.csv")).wait_for(timeout=120_000)
    assert page.locator("#wb-eval-column-prompt input").input_value() == "question"
    assert page.locator("#wb-eval-column-response input").input_value() == "answer"
    shot(page, "evaluate-columns")
    before = {job.name for job in (workspace / "evals").iterdir()}
    page.click("#wb-eval-start")
    deadline = time.time() + 300
    while time.time() < deadline:
        new = [job for job in (workspace / "evals").iterdir() if job.name not in before]
        if new and (new[0] / "metrics.json").exists():
            break
        time.sleep(0.5)
    job = new[0]
    metrics = json.loads((job / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["rows"] == ROWS and list(metrics["models"]) == ["base", run]
    config = yaml.safe_load((job / "config.yaml").read_text(encoding="utf-8"))
    assert config["data"]["columns"] == {"prompt": "question", "response": "answer"}, config["data"]
    first = json.loads((job / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["reference"] == "I am Aria.", first
    page.locator("#wb-eval-table table").wait_for(timeout=60_000)


COMPARED = ("lora", "prompt", "ia3")


def compare_states(page) -> dict[str, str]:
    """method -> its state as the Compare tab's table shows it."""
    return {row.get_attribute("data-method"): row.locator("td").nth(1).inner_text().strip()
            for row in page.locator("#wb-compare-table tr[data-method]").all()}


def test_compare_three_methods_fills_the_table_from_their_runs(shared_page, server):
    """In this module to share its server and page (the Evaluate test leaves it reloaded, on its tab): the Compare tab
    queues three one-step runs, and the table fills in with what each run wrote (its metrics.json), the best per
    column marked."""
    url, workspace = server
    page = shared_page
    page.get_by_role("tab", name="Compare").click()
    methods = page.locator("#wb-compare-methods")
    for label in methods.locator("label").all():
        name = label.inner_text().strip()
        if (name in COMPARED) != label.locator("input").is_checked():
            label.click()
    page.locator("#wb-compare-evaluate input").uncheck()  # the evaluations: tests/engine/test_compare.py's subject
    set_number(page, "wb-compare-steps", "1")
    set_number(page, "wb-compare-cutoff", "64")
    page.locator("#wb-compare-name input, #wb-compare-name textarea").first.fill("three")
    page.click("#wb-compare-start")
    deadline = time.time() + 600  # three runs of one step: seconds each, minutes only on a loaded machine
    while time.time() < deadline:
        states = compare_states(page)
        if list(states) == list(COMPARED) and set(states.values()) == {"completed"}:
            break
        page.wait_for_timeout(500)
    assert compare_states(page) == dict.fromkeys(COMPARED, "completed")
    shot(page, "compare")
    table = json.loads((workspace / "compares" / "three" / "table.json").read_text(encoding="utf-8"))
    for row in page.locator("#wb-compare-table tr[data-method]").all():
        method = row.get_attribute("data-method")
        metrics = json.loads((workspace / "runs" / f"three-{method}" / "metrics.json").read_text(encoding="utf-8"))
        cells = dict(zip(["method", "state", *(column.key for column in COLUMNS)],
                         (cell.inner_text().strip() for cell in row.locator("td").all()), strict=True))
        assert cells["trainable_params"].rstrip(" ★") == f"{metrics['trainable_params']:,}"
        assert cells["eval_loss"].rstrip(" ★") == f"{metrics['eval_loss']:.4f}"
        estimated = json.loads((workspace / "compares" / "three" / "estimate.json").read_text(encoding="utf-8"))
        assert cells["estimated_peak_mb"] == f"{estimated['methods'][method]['total_mb']:.0f}"  # Start wrote it
        assert next(r for r in table["rows"] if r["method"] == method)["eval_loss"] == metrics["eval_loss"]
    assert page.locator("#wb-compare-table strong.wb-best").count() >= 5
    assert page.locator("#wb-compare-csv").is_visible() and page.locator("#wb-compare-md").is_visible()
    # a reload fills the form with the comparison the tab shows: Start then goes on with it, not with the defaults
    page.reload()
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_function("() => document.querySelector('#wb-compare-name textarea, #wb-compare-name input')"
                           ".value === 'three'", timeout=30_000)
    checked = [label.inner_text().strip() for label in page.locator("#wb-compare-methods label").all()
               if label.locator("input").is_checked()]
    assert checked == list(COMPARED), checked
    assert page.locator("#wb-compare-steps input").input_value() == "1"
    assert page.locator("#wb-compare-cutoff input").input_value() == "64"
