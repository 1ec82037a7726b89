"""The Train tab's dataset panel in a real browser: the token-length histogram as drawn, and uploads that stay
listed after a reload without piling up copies (issue 9, items 3 and 5)."""

from __future__ import annotations

import json
import re
import shlex
import time
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from tests.browser.pages import pick, set_number, shot, wait_for_yaml
from webui.tabs.train.data import FITS_COLOUR, OVER_COLOUR

pytestmark = pytest.mark.browser

# What the drawn chart says: each bar's aria label (vega writes "x: bin; y: rows; colour: category"), row count,
# fill and whether it can be seen (the topmost element at its centre: a bar drawn outside the clipped plot area,
# as gradio drew over-cutoff bars, is not), the x-axis labels in drawing order with their boxes, and the legend.
READ_CHART = """() => {
  const chart = document.querySelector('#wb-lengths');
  const bars = Array.from(chart.querySelectorAll('[aria-roledescription=bar]')).map(bar => {
    const parts = bar.getAttribute('aria-label').split('; ').map(part => part.split(': ')[1]);
    const box = bar.getBoundingClientRect();
    const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return {label: bar.getAttribute('aria-label'), rows: Number(parts[1]), category: parts[2],
            fill: (bar.getAttribute('fill') || '').toLowerCase(), seen: box.height > 0 && top === bar};
  });
  const labels = Array.from(chart.querySelectorAll("[aria-label^='X-axis'] .role-axis-label text")).map(text => {
    const box = text.getBoundingClientRect();
    return {text: text.textContent, left: box.left, right: box.right, top: box.top, bottom: box.bottom};
  });
  const legend = chart.querySelector("[aria-label^='Symbol legend']");
  return {bars, labels, legend: legend ? legend.textContent : ''};
}"""


def bar_labels(page) -> list[str]:
    return [bar["label"] for bar in page.evaluate(READ_CHART)["bars"]]


def read_chart(page, before: list[str]) -> dict:
    """The chart once it is redrawn (its bars differ from `before`) and settled."""
    deadline = time.time() + 120
    while (chart := page.evaluate(READ_CHART))["bars"] and [bar["label"] for bar in chart["bars"]] == before:
        assert time.time() < deadline, f"the chart was not redrawn: {chart}"
        time.sleep(0.5)
    time.sleep(1)  # the redraw's transition
    page.locator("#wb-lengths").scroll_into_view_if_needed()
    return page.evaluate(READ_CHART)


def overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def set_cutoff(page, cutoff: int) -> dict:
    """Type a cutoff and return the chart once it is redrawn for it."""
    before = bar_labels(page)
    set_number(page, "f-train-cutoff-len", str(cutoff))
    page.wait_for_selector(f"#wb-over-cutoff:has-text('({cutoff})')", timeout=120_000)
    return read_chart(page, before)


def test_histogram_draws_every_row_in_numeric_bins(page):
    """The starter set at cutoff 64: 25 rows fit, 15 are over; all 40 are drawn, the over ones in their colour.

    64, then 1024 (every row fits), then 64 again: the last answer comes from the inspect cache and reaches
    the chart as new data only, which gradio drew with the colour scale of the all-fitting chart before."""
    page.wait_for_selector("#wb-data-summary:has-text('40')", timeout=120_000)
    page.wait_for_selector("#wb-lengths [aria-roledescription=bar]", timeout=120_000)  # drawn at the starter cutoff
    set_cutoff(page, 64)
    assert sum(bar["rows"] for bar in set_cutoff(page, 1024)["bars"]) == 40
    chart = set_cutoff(page, 64)
    shot(page, "data-histogram-64")

    bars = chart["bars"]
    assert sum(bar["rows"] for bar in bars) == 40, bars
    assert all(bar["seen"] for bar in bars if bar["rows"]), bars  # every row is drawn where it can be seen
    assert sum(bar["rows"] for bar in bars if bar["category"] == "over cutoff") == 15, bars
    labels = [label["text"] for label in chart["labels"]]
    lows = [int(re.match(r"\d+", text)[0]) for text in labels]
    assert lows == sorted(lows) and len(lows) == len(set(lows)) >= 2, labels  # numeric order, one label a bin
    assert "57–64" in labels and "65–72" in labels  # the cutoff is a bin edge
    assert {bar["fill"] for bar in bars if bar["rows"] and bar["category"] == "over cutoff"} == {OVER_COLOUR}
    assert {bar["fill"] for bar in bars if bar["rows"] and bar["category"] == "fits"} == {FITS_COLOUR}
    assert "64" in chart["legend"], chart["legend"]  # the cutoff is named by the colours' legend
    boxes = chart["labels"]
    assert not any(overlaps(a, b) for a, b in pairwise(boxes)), boxes  # readable: no label over another


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
    assert not any((workspace / ".gradio").rglob("alpaca_en_demo.json"))  # moved out of Gradio's cache: one copy

    page.reload()
    page.wait_for_selector("#wb-start")
    deadline = time.time() + 60
    while "uploads/alpaca_en_demo.json" not in (options := dropdown_options(page, "#wb-dataset")):
        assert time.time() < deadline, f"the upload is not listed after a reload: {options}"
        time.sleep(1)

    page.locator("#wb-upload input[type=file]").set_input_files(str(data))  # the same file again
    page.wait_for_function("() => document.querySelector('#wb-dataset input').value === 'uploads/alpaca_en_demo.json'")
    assert sorted(p.name for p in (workspace / "uploads").iterdir()) == ["alpaca_en_demo.json"]
    assert not any((workspace / ".gradio").rglob("alpaca_en_demo.json"))  # the second copy Gradio got is gone too
    options = dropdown_options(page, "#wb-dataset")
    assert options.count("uploads/alpaca_en_demo.json") == 1, options


def test_a_file_bigger_than_the_sample_says_which_rows_were_measured(page, tmp_path):
    """Every row is counted; the summary by the histogram says the lengths come from the first 2,000."""
    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Question {i}?", "output": f"Answer {i}."}) + "\n"
                            for i in range(2500)), encoding="utf-8")
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    summary = page.wait_for_selector("#wb-data-summary:has-text('2,500')", timeout=120_000)
    text = summary.inner_text()
    assert "2,500 rows" in text and "first 2,000 rows" in text, text
    over = page.wait_for_selector("#wb-over-cutoff:has-text('rows are longer')", timeout=120_000).inner_text()
    assert "first 2,000 of 2,500 rows" in over, over  # the count is of the rows measured, not a total
    page.wait_for_selector("#wb-lengths [aria-roledescription=bar]", timeout=120_000)
    shot(page, "data-sampled")


def test_two_datasets_are_listed_per_file_and_both_go_into_the_yaml(page):
    """The starter set stays the dataset; a sample picked under "More datasets" adds a per-file line of rows and
    formats under the inspection, and the config preview's data.path lists both, the dataset first."""
    page.wait_for_selector("#wb-data-summary:has-text('40')", timeout=120_000)
    pick(page, "#wb-more-datasets", "samples/instructions_openai.jsonl")
    summary = page.wait_for_selector("#wb-data-summary:has-text('rows in all')", timeout=120_000).inner_text()
    assert "identity_alpaca.json: 40 rows (alpaca)" in summary, summary
    assert "instructions_openai.jsonl: 150 rows (openai)" in summary and "190 rows in all" in summary, summary
    page.wait_for_selector("#wb-lengths [aria-roledescription=bar]", timeout=120_000)  # the first one's histogram
    page.get_by_text("Config preview, save and load").click()
    wait_for_yaml(page, "  path:\n  - ", "instructions_openai.jsonl")
    # the editor draws only the lines near the window, so data.path's list is read from its lines, not parsed whole
    lines = page.locator("#wb-yaml .cm-content").inner_text().splitlines()
    start = lines.index("  path:")
    listed = [Path(line.removeprefix("  - ")).name for line in lines[start + 1:start + 3]]
    assert listed == ["identity_alpaca.json", "instructions_openai.jsonl"], lines
    shot(page, "data-two-datasets")



def test_enter_applies_the_cutoff_and_one_below_its_range_is_one_sentence_every_view_agrees_with(page):
    """Issue 24, item 2: Enter in the cutoff box applies it at once (no need to leave the box); a cutoff of 1 gives
    one sentence naming the field (not gradio's unnamed "Value 1 is less than minimum value 8." twice), also when the
    box was clicked into first (its release, still on its way, made the browser drop the typed number's under
    gradio's default "once": no sentence at all), and the box, the over-cutoff line, the histogram and the YAML all
    say 8."""
    page.wait_for_selector("#wb-lengths [aria-roledescription=bar]", timeout=120_000)
    box = page.locator("#f-train-cutoff-len input[type=number]")
    box.fill("64")
    box.press("Enter")
    page.wait_for_selector("#wb-over-cutoff:has-text('(64)')", timeout=60_000)
    before = bar_labels(page)
    # every toast shown from here on: a toast leaves after 10 s, and on a busy machine the chart below takes longer
    page.evaluate("""() => { window.__toasts = [];
        new MutationObserver(records => records.forEach(record => record.addedNodes.forEach(node => {
            if (node.nodeType !== 1) return;
            const bodies = node.matches('[data-testid=toast-body]') ? [node]
                : [...node.querySelectorAll('[data-testid=toast-body]')];
            bodies.forEach(body => window.__toasts.push(body.innerText));
        }))).observe(document.body, {subtree: true, childList: true}); }""")
    box.click()  # as a person does: a click into the box is a release of the number it holds (64), then 1 is typed
    box.fill("1")
    box.press("Enter")
    page.wait_for_selector("#wb-over-cutoff:has-text('(8)')", timeout=60_000)
    chart = read_chart(page, before)
    page.wait_for_timeout(2000)  # a second toast, from another event reading the box, would be up by now
    said = page.evaluate("window.__toasts")
    assert len(said) == 1 and "Cutoff length" in said[0] and "8" in said[0], said
    assert "minimum value" not in said[0], said
    assert box.input_value() == "8"
    assert "cutoff_len 8" in chart["legend"], chart["legend"]
    # the example (the first row, 41 tokens) is cut at 8: the rest is marked, and not as trained
    example = page.wait_for_selector("#wb-example:has-text('beyond cutoff_len')").inner_text().lower()
    body = example.split("\n", 1)[1]  # below the box's label; badges are drawn upper case
    assert body.count("trained") == body.count("not trained") >= 1, example  # the reply is beyond the cut
    page.get_by_text("Config preview, save and load").click()
    deadline = time.time() + 60  # the YAML the preview's command (and Save) writes; its box draws only some lines
    while (previewed := previewed_cutoff(page)) != 8:
        assert time.time() < deadline, f"the config preview says cutoff_len {previewed}"
        time.sleep(0.5)
    shot(page, "data-cutoff-clamped")


def previewed_cutoff(page) -> int | None:
    command = page.locator("#wb-command textarea").input_value()
    return yaml.safe_load(Path(shlex.split(command)[-1]).read_text(encoding="utf-8"))["train"]["cutoff_len"] if (
        command) else None


# What the preview table and the rendered example look like (issue 24 item 6): every header's height (a header
# squeezed to 32 px printed "input" one letter a line), the table's width against its box (the output column ran
# off it), the inline badges of the example (one per trained piece, broken across lines) and how it wraps.
READ_LAYOUT = """() => {
  const preview = document.querySelector('#wb-data-preview');
  const heads = Array.from(preview.querySelectorAll('thead th .header-content span')).map(span => span.offsetHeight);
  const table = preview.querySelector('table');
  const example = document.querySelector('#wb-example');
  const field = example.querySelector('.textfield');
  return {heads, table: table.getBoundingClientRect().width, box: preview.getBoundingClientRect().width,
          badges: field.querySelectorAll('.label').length, legend: example.innerText.includes('trained'),
          wordBreak: getComputedStyle(field).wordBreak,
          page: [document.documentElement.scrollWidth, document.documentElement.clientWidth]};
}"""


def test_the_preview_and_example_fit_their_boxes_and_an_upload_can_be_removed(page, server, tmp_path):
    _, workspace = server
    page.set_viewport_size({"width": 1000, "height": 900})
    data = tmp_path / "long_rows.jsonl"
    rows = [{"instruction": f"Tell me about bird number {n}, please.", "input": "",
             "output": f"Bird number {n} hovers over the fields at dawn and eats voles, beetles and worms."}
            for n in range(6)]
    rows[0]["output"] += " It sings." * 150  # past the default cutoff_len: the example shows where it is cut
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    page.wait_for_function("() => document.querySelector('#wb-dataset input').value === 'uploads/long_rows.jsonl'")
    page.wait_for_function("() => document.querySelector('#wb-data-preview')?.innerText.includes('bird number 0')")
    page.wait_for_function(  # lower case: gradio's inline badges were upper-cased by CSS
        "() => document.querySelector('#wb-example')?.innerText.toLowerCase().includes('beyond cutoff_len')")
    layout = page.evaluate(READ_LAYOUT)
    shot(page, "preview-layout")
    assert len(set(layout["heads"])) == 1, layout  # every header on one line
    assert layout["table"] <= layout["box"] + 1, layout  # no column runs off the box
    assert layout["badges"] == 0 and layout["legend"] and layout["wordBreak"] == "normal", layout
    assert layout["page"][0] <= layout["page"][1], layout  # nothing widens the page

    page.click("#wb-remove-upload")
    page.wait_for_function("() => document.querySelector('#wb-dataset input').value === ''")
    assert not (workspace / "uploads" / "long_rows.jsonl").exists()
    assert "uploads/long_rows.jsonl" not in dropdown_options(page, "#wb-dataset")


def test_an_odd_columns_file_opens_the_columns_group_whose_picks_are_data_columns(page, server, tmp_path):
    """A file of question / answer rows matches no format: the page's sentence points at Columns, which opens by
    itself; picking prompt and response reads the file mapped (its rows counted), and Save writes data.columns. (A
    saved or kept config bringing the picks back: tests/unit/test_form_columns.py, through the same handlers.)"""
    _, workspace = server
    data = tmp_path / "odd_columns.json"
    data.write_text(json.dumps([{"question": f"What is {n} + {n}?", "answer": str(2 * n)} for n in range(7)]),
                    encoding="utf-8")
    page.wait_for_selector("#wb-data-summary:has-text('Detected format')", timeout=120_000)
    assert not page.locator("#wb-column-prompt").is_visible()  # the starter set's columns need no map: group closed
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    said = page.wait_for_selector("#wb-data-error:has-text('under Columns')", timeout=120_000).inner_text()
    assert "question, answer" in said and "data.columns" not in said, said
    page.wait_for_selector("#wb-column-prompt", state="visible", timeout=30_000)  # the group opened by itself
    assert not page.locator("#wb-column-chosen").is_visible()  # a preference stage's name: not under sft
    pick(page, "#wb-column-prompt", "question")
    pick(page, "#wb-column-response", "answer")
    summary = page.wait_for_selector("#wb-data-summary:has-text('Detected format')", timeout=120_000).inner_text()
    assert "prompt_completion" in summary and "7 rows" in summary, summary
    assert not page.locator("#wb-data-error").count()
    # The preview, then Save (which reads the form as the browser holds it). The preview once in five runs did not
    # show these picks: the dropdown's choices changed order when the first pick's answer came back (the mapped
    # column went last), and the second pick, clicked as they did, chose "question" for response. The rows keep the
    # file's order now (engine.data.formats.apply_columns; tests/unit/test_data.py).
    page.get_by_text("Config preview, save and load").click()
    wait_for_yaml(page, "columns:\n    prompt: question\n    response: answer\n")
    page.get_by_label("Config name").fill("odd-mapped")
    page.get_by_role("button", name="Save form to YAML").click()
    page.wait_for_selector("[data-testid=toast-body]:has-text('odd-mapped.yaml')")
    saved = yaml.safe_load((workspace / "configs" / "odd-mapped.yaml").read_text(encoding="utf-8"))
    assert saved["data"]["columns"] == {"prompt": "question", "response": "answer"}, saved["data"]

