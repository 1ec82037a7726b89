"""The Train tab's placeholder fields in a real browser (issue 13, item 3): an identity-style upload shows a field
for each `{{name}}`, what is typed there is the YAML preview's data.replace, and a saved config brings it back
after a reload. A completed run's own config is offered beside the saved ones, so its settings train again."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.pages import make_run, pick, shot, wait_for_yaml

pytestmark = pytest.mark.browser

IDENTITY = [  # LLaMA-Factory's identity.json, in short
    {"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "What is your name?", "input": "", "output": "You may refer to me as {{name}}."},
]


def field(page, index: int):
    return page.locator(f"#wb-placeholder-{index} textarea")


def placeholder_text(page, index: int) -> str:
    """Placeholder field `index`'s text, without the progress timer ("0.1s") that an inspection still in flight draws
    over it (seen in the whole suite's run: a later inspection follows the upload's)."""
    return re.sub(r"^\d+(\.\d+)?s\n", "", page.locator(f"#wb-placeholder-{index}").inner_text())


def open_config_panel(page) -> None:
    """Opens the config preview's panel, unless a test before left it open (the page they share)."""
    if not page.locator("#wb-command").is_visible():
        page.get_by_role("button", name="Config preview, save and load").click()
    page.wait_for_selector("#wb-command", state="visible")


def test_placeholder_fields_fill_data_replace_and_come_back_with_a_saved_config(shared_page, tmp_path):
    page = shared_page  # the first of the module's tests on this page: the page as it opens
    data = tmp_path / "identity.json"
    data.write_text(json.dumps(IDENTITY), encoding="utf-8")
    assert not page.locator("#wb-placeholder-0").is_visible()  # the starter set has none
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    page.wait_for_selector("#wb-placeholder-1", state="visible", timeout=120_000)
    assert placeholder_text(page, 0).startswith("{{name}}")
    assert placeholder_text(page, 1).startswith("{{author}}")
    assert "rows: 3 · times: 3" in placeholder_text(page, 0)
    assert not page.locator("#wb-placeholder-2").is_visible()
    open_config_panel(page)
    wait_for_yaml(page, "identity.json", "replace: {}")

    field(page, 0).fill("Aria")
    field(page, 1).fill("Ada {{Labs}} {0}")  # taken literally, braces and all
    wait_for_yaml(page, "replace:\n    name: Aria\n    author: Ada {{Labs}} {0}\n")
    # the preview table and the example show the rows as they will train: filled (issue 24, item 3)
    page.wait_for_selector("#wb-example:has-text('Hello! I am Aria, an AI assistant developed by Ada {{Labs}} {0}')",
                           timeout=120_000)
    assert "I am Aria" in page.locator("#wb-data-preview").inner_text()
    shot(page, "data-placeholders")
    field(page, 1).fill("")  # an emptied field fills nothing
    wait_for_yaml(page, "replace:\n    name: Aria\n  reasoning")
    field(page, 1).fill("Ada Labs")
    wait_for_yaml(page, "replace:\n    name: Aria\n    author: Ada Labs\n")

    page.get_by_label("Config name").fill("named")
    page.get_by_role("button", name="Save form to YAML").click()
    page.wait_for_selector("[data-testid=toast-body]:has-text('named.yaml')")

    page.reload()
    page.wait_for_selector("#wb-start")
    # the page keeps the form it was left with (the dataset, and what its placeholder fields were filled with); this
    # asserted the starter set once, which held only while the kept form was overwritten by the opening preview
    page.wait_for_function("() => document.querySelector('#wb-placeholder-1 textarea')?.value === 'Ada Labs'",
                           timeout=120_000)
    assert field(page, 0).input_value() == "Aria"
    open_config_panel(page)
    saved = page.get_by_role("combobox", name="Saved configs")
    saved.click()
    page.locator("[role=option]", has_text="named.yaml").first.click()
    page.get_by_role("button", name="Load into the form").click()
    page.wait_for_function("() => document.querySelector('#wb-placeholder-1 textarea')?.value === 'Ada Labs'",
                           timeout=120_000)
    assert field(page, 0).input_value() == "Aria"
    wait_for_yaml(page, "identity.json", "replace:\n    name: Aria\n    author: Ada Labs\n")


def test_run_again_on_a_completed_run_points_to_its_config_which_fills_the_form(shared_page, server):
    """Run again refuses a completed run (it would delete its results) and names runs/NAME/config.yaml; the Train
    tab's saved configs list it when opened (the run finished after the page loaded), and it fills the form. On the
    page the placeholder test left (its saved config loaded into the form)."""
    page = shared_page
    run = make_run(server[1], "done-once", steps=2, method={"r": 4, "lora_alpha": 8})
    page.get_by_role("tab", name="Runs").click()
    pick(page, "#wb-runs-select", "done-once")
    page.click("#wb-runs-rerun")
    page.wait_for_selector("[data-testid=toast-body]:has-text('runs/done-once/config.yaml under Saved configs')")
    assert (run / "adapter" / "adapter_model.safetensors").is_file()  # refused: nothing deleted
    shot(page, "run-again-completed")

    page.get_by_role("tab", name="Train").click()
    open_config_panel(page)
    page.get_by_role("combobox", name="Saved configs").click()
    page.locator("[role=option]", has_text="runs/done-once/config.yaml").first.click()
    page.get_by_role("button", name="Load into the form").click()
    wait_for_yaml(page, "\n  r: 4\n", "max_steps: 2\n", "lora_alpha: 8")
