"""Pairs from the chat to a DPO run in a real browser (issue 21): three answers rated in the Chat tab (the tuned one
better, the base one better, a better answer written) grow the pairs file, whose count the page shows; the Train
tab lists the file with that count, trains DPO on it (stage chosen in the Method section, a few steps) and draws
the reward-margin curve as the run logs it.

The "tuned" model beside the base is an adapter folder made in the test process (a LoRA of random weights on the
demo model, whose answers differ from the base's), which costs seconds where a training run costs a minute."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.pages import DEMO_MODEL, chart_lines, open_page, pick, set_number, shot

pytestmark = pytest.mark.browser

ADAPTER = "tuned-adapter"
DPO_STEPS = 3
CHART = chart_lines("#wb-loss")  # the Train tab's loss chart


def random_adapter(folder) -> None:
    """A LoRA adapter folder on the demo model with random A and B (not the no-op a fresh adapter is)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(DEMO_MODEL),
                           LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(DEMO_MODEL).save_pretrained(folder)


def ask(page, question: str, turn: int) -> None:
    page.locator("#wb-chat-msg textarea").fill(question)
    page.click("#wb-chat-send")
    page.wait_for_function("(turn) => document.querySelectorAll('#wb-chat-base [data-testid=bot]').length === turn"
                           " && document.querySelectorAll('#wb-chat-base [data-testid=bot]')[turn - 1]"
                           ".innerText.trim()", arg=turn, timeout=90_000)
    page.wait_for_selector("#wb-chat-send:not([disabled])")


def test_rate_three_answers_then_train_dpo_on_them(browser, server):
    url, workspace = server
    random_adapter(workspace / ADAPTER)
    page = open_page(browser, url)
    page.get_by_role("tab", name="Chat").click()
    page.locator("#wb-chat-adapter-dir textarea, #wb-chat-adapter-dir input").first.fill(str(workspace / ADAPTER))
    page.click("#wb-chat-load")
    page.wait_for_selector(f"#wb-chat-status:has-text('adapters: {ADAPTER}')", timeout=120_000)
    page.locator("#wb-chat-sampling").get_by_text("Sampling").click()
    set_number(page, "wb-chat-max-new-tokens", "8")
    page.locator("#wb-side-by-side input").check()
    page.wait_for_selector("#wb-chat-base", state="visible")

    for turn, (question, how) in enumerate([("Who are you?", "#wb-better-1"), ("What is your name?", "#wb-better-2"),
                                            ("Who made you?", None)], 1):
        ask(page, question, turn)
        if how is None:
            page.locator("#wb-better-text textarea").fill("I am the workbench assistant, made by you.")
            how = "#wb-better-save"
        page.click(how)
        counted = "1 pair:" if turn == 1 else f"{turn} pairs:"
        page.wait_for_selector(f"#wb-pairs-count:has-text('chat-pairs.jsonl now holds {counted}')")
    pairs = workspace / "uploads" / "pairs" / "chat-pairs.jsonl"
    rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and rows[2]["chosen"][0]["content"] == "I am the workbench assistant, made by you."
    shot(page, "preference-chat-rated")

    page.get_by_role("tab", name="Train").click()
    pick(page, "#wb-dataset", "chat-pairs.jsonl · 3 pairs")  # listed with its count once the tab is shown
    page.wait_for_selector("#wb-example-rejected", state="visible")  # the first pair, chosen beside rejected
    pick(page, "#f-train-stage", "dpo")
    page.wait_for_selector("#f-train-beta", state="visible")
    page.locator("#f-ui-stop-by label", has_text="steps").click()
    set_number(page, "f-train-max-steps", str(DPO_STEPS))
    set_number(page, "f-train-batch-size", "2")
    page.click("#wb-start")
    page.wait_for_selector("#wb-progress [data-state='training']", timeout=120_000)
    try:  # the margin curve is drawn as the run logs it, then holds one point per step
        page.wait_for_function(f"() => ({CHART})().legend.includes('rewards/margins')", timeout=180_000)
        page.wait_for_selector("#wb-progress [data-state='completed']", timeout=180_000)
        page.wait_for_function(f"""() => {{ const c = ({CHART})(); const i = c.legend.indexOf('rewards/margins');
            return i >= 0 && c.lines.length === c.legend.length && c.lines[i].points === {DPO_STEPS}; }}""",
                               timeout=30_000)
    except PlaywrightTimeout:
        raise AssertionError(f"the chart shows {page.evaluate(CHART)}") from None
    assert {"train", "rewards/chosen", "rewards/rejected", "rewards/accuracies"} <= set(page.evaluate(CHART)["legend"])
    shot(page, "preference-dpo-trained")
    run = workspace / "runs" / page.locator("#wb-progress b").first.inner_text().strip()
    assert "stage: dpo" in (run / "config.yaml").read_text() and (run / "adapter" / "adapter_config.json").is_file()
    page.context.close()
