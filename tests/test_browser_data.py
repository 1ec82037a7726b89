"""The Train tab's dataset panel in a real browser: the token-length histogram as drawn, and uploads that stay
listed after a reload without piling up copies (issue 9, items 3 and 5)."""

from __future__ import annotations

import json
import time

import pytest

from tests.browser import browser, page, server, set_number, shot  # noqa: F401
from webui.tabs.train_handlers import FITS_COLOUR, OVER_COLOUR

pytestmark = pytest.mark.browser

# What the drawn chart says: each bar's row count (from the aria label vega writes for it), its fill colour
# and height, the x-axis labels in drawing order with their boxes, and the legend.
READ_CHART = """() => {
  const chart = document.querySelector('#wb-lengths');
  const bars = Array.from(chart.querySelectorAll('[aria-roledescription=bar]')).map(bar => ({
    rows: Number(bar.getAttribute('aria-label').split('; ')[1].split(': ')[1]),
    fill: (bar.getAttribute('fill') || '').toLowerCase(),
    height: bar.getBBox().height,
  }));
  const labels = Array.from(chart.querySelectorAll("[aria-label^='X-axis'] .role-axis-label text")).map(text => {
    const box = text.getBoundingClientRect();
    return {text: text.textContent, left: box.left, right: box.right, top: box.top, bottom: box.bottom};
  });
  const legend = chart.querySelector("[aria-label^='Symbol legend']");
  return {bars, labels, legend: legend ? legend.textContent : ''};
}"""


def read_chart(page, rows: int, legend: str) -> dict:
    """The chart once it shows `rows` rows in all and `legend` in its legend (it redraws after each inspect)."""
    deadline = time.time() + 120
    while True:
        chart = page.evaluate(READ_CHART)
        if sum(bar["rows"] for bar in chart["bars"]) == rows and legend in chart["legend"]:
            return chart
        assert time.time() < deadline, f"the chart never showed {rows} rows with legend {legend!r}: {chart}"
        time.sleep(0.5)


def overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_histogram_draws_every_row_in_numeric_bins(page):
    """The starter set at cutoff 64: 25 rows fit, 15 are over; all 40 are drawn, the over ones in their colour."""
    page.wait_for_selector("#wb-data-summary:has-text('40')", timeout=120_000)
    page.wait_for_selector("#wb-lengths [aria-roledescription=bar]", timeout=120_000)  # drawn at the starter cutoff
    set_number(page, "f-train-cutoff-len", "64")
    page.wait_for_selector("#wb-over-cutoff:has-text('(64)')", timeout=120_000)
    chart = read_chart(page, rows=40, legend="64")
    shot(page, "data-histogram-64")

    drawn = [bar for bar in chart["bars"] if bar["rows"]]
    assert all(bar["height"] > 0 for bar in drawn), chart["bars"]
    assert {bar["fill"] for bar in drawn} == {FITS_COLOUR, OVER_COLOUR}, chart["bars"]  # every bar has a colour
    assert sum(bar["rows"] for bar in drawn if bar["fill"] == OVER_COLOUR) == 15
    assert sum(bar["rows"] for bar in drawn if bar["fill"] == FITS_COLOUR) == 25

    labels = [label["text"] for label in chart["labels"]]
    lows = [int(text.split("–")[0]) for text in labels]
    assert lows == sorted(lows) and len(lows) == len(set(lows)) >= 2, labels  # numeric order, one label a bin
    assert "57–64" in labels and "65–72" in labels  # the cutoff is a bin edge
    boxes = chart["labels"]
    assert not any(overlaps(a, b) for a, b in zip(boxes, boxes[1:])), boxes  # readable: no label over another


def dropdown_options(page, selector: str) -> list[str]:
    box = page.locator(f"{selector} input")
    box.click()
    options = page.locator("[role=option]").all_inner_texts()
    box.press("Escape")
    box.blur()  # a focused dropdown keeps showing its typed text, not the value the server sets
    return [text.replace("✓", "").strip() for text in options]  # the chosen option carries a tick


def test_upload_stays_listed_after_reload_and_is_stored_once(page, server, tmp_path):
    _, workspace = server
    data = tmp_path / "alpaca_en_demo.json"
    data.write_text(json.dumps([{"instruction": "Say hi.", "input": "", "output": "Hi!"}] * 3), encoding="utf-8")
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    page.wait_for_function("() => document.querySelector('#wb-dataset input').value === 'uploads/alpaca_en_demo.json'")

    page.reload()
    page.wait_for_selector("#wb-start")
    deadline = time.time() + 60
    while "uploads/alpaca_en_demo.json" not in (options := dropdown_options(page, "#wb-dataset")):
        assert time.time() < deadline, f"the upload is not listed after a reload: {options}"
        time.sleep(1)

    page.locator("#wb-upload input[type=file]").set_input_files(str(data))  # the same file again
    page.wait_for_function("() => document.querySelector('#wb-dataset input').value === 'uploads/alpaca_en_demo.json'")
    assert sorted(p.name for p in (workspace / "uploads").iterdir()) == ["alpaca_en_demo.json"]
    options = dropdown_options(page, "#wb-dataset")
    assert options.count("uploads/alpaca_en_demo.json") == 1, options
