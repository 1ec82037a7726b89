"""The Train tab's placeholder fields in a real browser (issue 13, item 3): an identity-style upload shows a field
for each `{{name}}`, what is typed there is the YAML preview's data.replace, and a saved config brings it back
after a reload."""

from __future__ import annotations

import json

import pytest

from tests.browser import browser, page, server, shot  # noqa: F401

pytestmark = pytest.mark.browser

IDENTITY = [  # LLaMA-Factory's identity.json, in short
    {"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "What is your name?", "input": "", "output": "You may refer to me as {{name}}."},
]
YAML_HAS = "([texts]) => texts.every(text => document.querySelector('#wb-yaml').innerText.includes(text))"


def field(page, index: int):
    return page.locator(f"#wb-placeholder-{index} textarea")


def open_config_panel(page) -> None:
    page.get_by_text("Config preview, save and load").click()
    page.wait_for_selector("#wb-command", state="visible")


def test_placeholder_fields_fill_data_replace_and_come_back_with_a_saved_config(page, tmp_path):
    data = tmp_path / "identity.json"
    data.write_text(json.dumps(IDENTITY), encoding="utf-8")
    assert not page.locator("#wb-placeholder-0").is_visible()  # the starter set has none
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    page.wait_for_selector("#wb-placeholder-1", state="visible", timeout=120_000)
    assert page.locator("#wb-placeholder-0").inner_text().startswith("{{name}}")
    assert page.locator("#wb-placeholder-1").inner_text().startswith("{{author}}")
    assert "rows: 3 · times: 3" in page.locator("#wb-placeholder-0").inner_text()
    assert not page.locator("#wb-placeholder-2").is_visible()
    open_config_panel(page)
    page.wait_for_function(YAML_HAS, arg=[["identity.json", "replace: {}"]])

    field(page, 0).fill("Aria")
    field(page, 1).fill("Ada {{Labs}} {0}")  # taken literally, braces and all
    page.wait_for_function(YAML_HAS, arg=[["replace:\n    name: Aria\n    author: Ada {{Labs}} {0}\n"]])
    shot(page, "data-placeholders")
    field(page, 1).fill("")  # an emptied field fills nothing
    page.wait_for_function(YAML_HAS, arg=[["replace:\n    name: Aria\n  reasoning"]])
    field(page, 1).fill("Ada Labs")
    page.wait_for_function(YAML_HAS, arg=[["replace:\n    name: Aria\n    author: Ada Labs\n"]])

    page.get_by_label("Config name").fill("named")
    page.get_by_role("button", name="Save form to YAML").click()
    page.wait_for_selector("[data-testid=toast-body]:has-text('named.yaml')")

    page.reload()
    page.wait_for_selector("#wb-start")
    assert not page.locator("#wb-placeholder-0").is_visible()  # a fresh page: the starter set again
    open_config_panel(page)
    saved = page.get_by_role("combobox", name="Saved configs")
    saved.click()
    page.locator("[role=option]", has_text="named.yaml").first.click()
    page.get_by_role("button", name="Load into the form").click()
    page.wait_for_function("() => document.querySelector('#wb-placeholder-1 textarea')?.value === 'Ada Labs'",
                           timeout=120_000)
    assert field(page, 0).input_value() == "Aria"
    page.wait_for_function(YAML_HAS, arg=[["identity.json", "replace:\n    name: Aria\n    author: Ada Labs\n"]])
