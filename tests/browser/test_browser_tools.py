"""Tool calls in a real browser: the Train tab's example of a glaive-style tool-call file shows the call as trained
and the tool list and the tool's result as not; the Chat tab offers tools to a run that memorised tool calls,
shows its reply as a tool call and sends the visitor's answer as the tool's result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.pages import open_page, pick, set_number, shot
from tests.engine.test_chat_tools import ROWS, TOOLS, train_tool_run

pytestmark = pytest.mark.browser

RUN = "tool-calls"
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'

# The example's pieces as drawn: the text of each highlighted-text token and whether it is marked trained.
EXAMPLE_PIECES = """() => [...document.querySelectorAll('#wb-example .token')]
    .map(token => [token.querySelector('.text').innerText, token.classList.contains('highlighted')])"""


def test_a_tool_call_row_shows_the_call_trained_and_the_tools_and_result_not(page, tmp_path: Path):
    """The demo model's template has no tool support: the row is rendered with the documented fallback."""
    data = tmp_path / "glaive_toolcall_demo.json"
    data.write_text(json.dumps(ROWS), encoding="utf-8")
    # the whole row within the cutoff (the demo's 256 cuts the tool list: the example then marks the rest as cut)
    set_number(page, "f-train-cutoff-len", "2048")
    page.locator("#wb-upload input[type=file]").set_input_files(str(data))
    page.wait_for_function("() => /sharegpt/.test(document.querySelector('#wb-data-summary').innerText)",
                           timeout=120_000)
    page.wait_for_function("() => document.querySelector('#wb-example').innerText.includes('get_weather')")
    pieces = page.evaluate(EXAMPLE_PIECES)
    trained = "\n".join(text for text, marked in pieces if marked)
    untrained = "\n".join(text for text, marked in pieces if not marked)
    assert f"<tool_call>\n{CALL}\n</tool_call><|im_end|>" in trained, pieces
    assert "It is 21 degrees in Paris.<|im_end|>" in trained, pieces
    assert json.dumps(TOOLS[0]) in untrained and '<tool_response>\n{"celsius": 21}\n</tool_response>' in untrained
    assert "celsius" not in trained and "description" not in trained and "What is the weather" not in trained
    shot(page, "tools-example")


# ---------------------------------------------------------------------------------------------- chat


@pytest.fixture(scope="module")
def tool_run(server) -> str:
    workspace = server[1]
    (workspace / "models").mkdir(exist_ok=True)
    train_tool_run(workspace / "models", workspace / "runs" / RUN)
    return RUN


def bot_messages(page) -> list[str]:
    return page.locator("#wb-chat-tuned [data-testid=bot]").all_inner_texts()


def wait_for_bot(page, count: int, words: str) -> None:
    try:
        page.wait_for_function("([count, words]) => { const bots = document.querySelectorAll("
                               "'#wb-chat-tuned [data-testid=bot]'); return bots.length === count && "
                               "bots[count - 1].innerText.includes(words); }", arg=[count, words], timeout=120_000)
    except PlaywrightTimeout:
        shown = bot_messages(page)
        raise AssertionError(f"expected reply {count} to hold {words!r}; the page shows {shown!r}") from None


def test_chat_offers_tools_and_answers_with_a_tool_call(browser, server, tool_run):
    """Tools (JSON) refuses what is not JSON in one sentence; offered the tools, the run answers the question with
    its memorised call, shown as a tool call, 'Send as tool result' is ticked, and the result sent back gets the
    memorised answer."""
    page = open_page(browser, server[0])
    page.get_by_role("tab", name="Chat").click()
    pick(page, "#wb-chat-run", tool_run)
    page.locator("#wb-chat-sampling").get_by_text("Sampling").click()
    set_number(page, "wb-chat-max-new-tokens", "48")
    set_number(page, "wb-chat-temperature", "0")
    page.click("#wb-chat-load")
    page.wait_for_selector("#wb-chat-status:has-text('Loaded')", timeout=180_000)

    page.locator("#wb-chat-tools-box").get_by_text("Tools (JSON)").click()
    tools_box = page.locator("#wb-chat-tools textarea")
    tools_box.fill("[{")
    page.locator("#wb-chat-msg textarea").fill("What is the weather in Paris?")  # the box left for the message
    page.wait_for_selector("#wb-chat-tools-note:has-text('Tools (JSON) is not valid JSON')")
    page.click("#wb-chat-send")  # refused: said once, by Send (leaving the box toasted it too: "(2)")
    page.wait_for_selector("[data-testid=toast-body]:has-text('Tools (JSON) is not valid JSON')")
    page.wait_for_timeout(1000)
    toasts = page.locator("[data-testid=toast-body]").all_inner_texts()
    assert sum("Tools (JSON)" in text for text in toasts) == 1 and "(2)" not in " ".join(toasts), toasts
    tools_box.fill(json.dumps(TOOLS, indent=1))
    tools_box.blur()
    page.wait_for_selector("#wb-chat-tools-note", state="hidden")

    page.locator("#wb-chat-msg textarea").fill("What is the weather in Paris?")
    page.click("#wb-chat-send")
    wait_for_bot(page, 1, 'get_weather({"city": "Paris"})')
    assert "Tool call" in bot_messages(page)[0]
    page.wait_for_function("() => document.querySelector('#wb-chat-tool-result input').checked")
    shot(page, "tools-chat-call")

    page.locator("#wb-chat-msg textarea").fill('{"celsius": 21}')
    page.click("#wb-chat-send")
    wait_for_bot(page, 2, "It is 21 degrees in Paris.")
    sent = page.locator("#wb-chat-tuned [data-testid=user]").all_inner_texts()
    assert "Tool result" in sent[-1] and "celsius" in sent[-1], sent
    # the reply streams in before the handler's last answer unticks the box: wait for it, as for the tick above
    page.wait_for_function("() => !document.querySelector('#wb-chat-tool-result input').checked", timeout=30_000)
    shot(page, "tools-chat-answer")
    page.context.close()
