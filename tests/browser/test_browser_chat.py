"""The Chat tab in a real browser: multi-turn conversations (side by side and alone) whose every reply is what
the engine's own chat code gives for the same history, a message sent while the model loads, a message
sent with no model loaded, a reload that shows what the worker still holds, and Serve / Stop serving of the
OpenAI-compatible server from the API box.

One server and one short run (trained through the CLI) serve the module. The loading test comes first, while
the chat worker has not started yet, so that loading takes seconds and the message really arrives during it. The
expected replies are computed in the test process with engine.chat.session.ChatSession on the same run, greedy,
turn by turn on each pane's own history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.pages import make_run, open_page, pick, set_number, shot

pytestmark = pytest.mark.browser

RUN = "chat-demo"
TUNED = "tuned"  # the name the Chat tab gives the run's adapter in the worker
MAX_NEW_TOKENS = 32
QUESTIONS = ["Who are you?", "What is your name?", "What can you do?", "Who made you?", "Are you ChatGPT?"]


@pytest.fixture(scope="module")
def run(server) -> str:
    # 10 steps: the tests compare each pane with the engine's own replies, and need only the adapter's to differ from
    # the base's (all five turns differed after 10 steps; 40 took 4.3 s of CPU more)
    make_run(server[1], RUN, steps=10)
    return RUN


@pytest.fixture(scope="module")
def engine_replies(server, run) -> Iterator[Callable[[str | None, list[str]], list[str]]]:
    """replies(adapter, questions): the engine's greedy reply to each question, each asked after the ones before
    it and the engine's own earlier replies (adapter None = the base model)."""
    from engine.chat.session import ChatSession

    session = ChatSession()
    session.load(None, {TUNED: str(server[1] / "runs" / run)})

    def replies(adapter: str | None, questions: list[str]) -> list[str]:
        history: list[dict[str, str]] = []
        answers = []
        for question in questions:
            history.append({"role": "user", "content": question})
            answer = "".join(session.generate(history, adapter, None, max_new_tokens=MAX_NEW_TOKENS,
                                              temperature=0.0))
            history.append({"role": "assistant", "content": answer})
            answers.append(answer)
        return answers

    yield replies
    session.unload()


# ---------------------------------------------------------------------------------------------- page helpers


def comparable(text: str) -> str:
    """Letters and digits only: markdown rendering may drop or restyle punctuation such as * and #."""
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def open_chat(page, run: str) -> None:
    page.get_by_role("tab", name="Chat").click()
    pick(page, "#wb-chat-run", run)
    page.locator("#wb-chat-sampling").get_by_text("Sampling").click()
    set_number(page, "wb-chat-max-new-tokens", str(MAX_NEW_TOKENS))
    set_number(page, "wb-chat-temperature", "0")  # greedy, as the expected replies
    # the slider takes the typed number on blur; on a busy machine that can lag behind the next click
    for elem_id, value in (("wb-chat-max-new-tokens", MAX_NEW_TOKENS), ("wb-chat-temperature", 0)):
        page.wait_for_function("([id, value]) => Number(document.querySelector(`#${id} input[type=range]`).value)"
                               " === value", arg=[elem_id, value], timeout=30_000)


def conversation(page, pane: str) -> list[tuple[str, str]]:
    """(role, text) of every message in a Chatbot, in order."""
    return page.evaluate("""(pane) => [...document.querySelectorAll(
            `${pane} [data-testid=user], ${pane} [data-testid=bot]`)]
        .map(m => [m.getAttribute('data-testid'), m.innerText])""", pane)


def send(page, text: str, *, enter: bool = False) -> None:
    box = page.locator("#wb-chat-msg textarea")
    box.fill(text)
    if enter:
        box.press("Enter")
    else:
        page.click("#wb-chat-send")


def wait_for_reply(page, pane: str, turns: int, expected: str, timeout: float = 90_000) -> None:
    """Wait until `pane` holds `turns` replies and the last one is `expected` (as the page shows text)."""
    try:
        page.wait_for_function(
            """([pane, turns, expected]) => {
                const bots = document.querySelectorAll(`${pane} [data-testid=bot]`);
                if (bots.length !== turns) return false;
                const text = bots[bots.length - 1].innerText.replace(/[^\\p{L}\\p{N}_]+/gu, ' ').trim()
                    .replace(/\\s+/g, ' ');
                return text === expected;
            }""", arg=[pane, turns, comparable(expected)], timeout=timeout)
    except PlaywrightTimeout:
        raise AssertionError(f"{pane} after turn {turns}: expected reply {expected!r}, "
                             f"the page holds {conversation(page, pane)!r}") from None


def assert_history(page, pane: str, questions: list[str], replies: list[str]) -> None:
    shown = [(role, comparable(text)) for role, text in conversation(page, pane)]
    expected = [pair for q, a in zip(questions, replies, strict=True)
                for pair in (("user", comparable(q)), ("bot", comparable(a)))]
    assert shown == expected, f"{pane}: {shown!r}"


def toasts(page) -> list[str]:
    return page.locator("[data-testid=toast-body]").all_inner_texts()


def error_badges(page) -> int:
    """Components showing gradio's error state (the red 'Error' badge) in the Chat tab's panes and message box."""
    return page.locator("#wb-chat-tuned .error, #wb-chat-base .error, #wb-chat-msg .error").count()


# ---------------------------------------------------------------------------------------------- tests


def test_send_while_loading_then_without_model(browser, server, run, engine_replies):
    """Alone (no side by side): a message sent right after pressing Load is answered once the model is loaded,
    the status line says loading, then loaded; the second turn sees the first; after Unload a message gets one
    sentence saying no model is loaded, and the conversation stays on screen."""
    questions = QUESTIONS[:2]
    replies = engine_replies(TUNED, questions)
    page = open_page(browser, server[0])
    open_chat(page, run)
    page.get_by_role("button", name="Unload", exact=True).click()
    page.wait_for_selector("#wb-chat-status:has-text('Unloaded')")
    page.evaluate("""() => { window.__status = [];
        const box = document.querySelector('#wb-chat-status');
        new MutationObserver(() => window.__status.push(box.innerText))
            .observe(box, {subtree: true, childList: true, characterData: true}); }""")
    page.click("#wb-chat-load")
    send(page, questions[0])  # at once: the worker is still starting and loading
    wait_for_reply(page, "#wb-chat-tuned", 1, replies[0], timeout=180_000)
    statuses = " | ".join(page.evaluate("window.__status"))
    assert "Loading" in statuses and "Loaded" in page.locator("#wb-chat-status").inner_text(), statuses
    send(page, questions[1], enter=True)
    wait_for_reply(page, "#wb-chat-tuned", 2, replies[1])
    assert_history(page, "#wb-chat-tuned", questions, replies)
    assert error_badges(page) == 0 and not toasts(page), toasts(page)

    page.get_by_role("button", name="Unload", exact=True).click()
    page.wait_for_selector("#wb-chat-status:has-text('Unloaded')")
    send(page, "Who made you?")
    page.wait_for_selector("[data-testid=toast-body]")
    said = toasts(page)
    assert len(said) == 1 and "No model is loaded" in said[0], said
    assert_history(page, "#wb-chat-tuned", questions, replies)  # the conversation stays
    assert page.locator("#wb-chat-msg textarea").input_value() == "Who made you?"  # the message is not lost
    assert error_badges(page) == 0
    shot(page, "chat-no-model")
    page.context.close()


def test_a_model_loaded_on_another_page_is_not_taken_for_this_conversations(browser, server, run):
    """The worker is the workspace's one chat model. Another page loading another run replaced the model this
    page's conversation was answered by, and the next message went on as if the replies on screen were the new
    model's. Send now says so in one sentence and keeps the message; Clear starts a conversation with it."""
    make_run(server[1], "chat-other", steps=2)
    first, second = open_page(browser, server[0]), open_page(browser, server[0])
    open_chat(first, run)
    first.click("#wb-chat-load")
    first.wait_for_selector(f"#wb-chat-status:has-text('Loaded'):has-text('{run}')", timeout=120_000)
    send(first, QUESTIONS[0])
    first.wait_for_function("() => document.querySelectorAll('#wb-chat-tuned [data-testid=bot]').length === 1",
                            timeout=90_000)
    # a folder typed first, then a run picked from the list: Load loads the run picked (the box is emptied; Load
    # preferred the box and loaded the folder)
    second.get_by_role("tab", name="Chat").click()
    folder = second.get_by_label("an adapter folder")
    folder.fill(str(server[1] / "runs" / run / "adapter"))
    open_chat(second, "chat-other")
    second.wait_for_function("() => document.querySelector('#wb-chat-adapter-dir textarea, "
                             "#wb-chat-adapter-dir input')?.value === ''", timeout=10_000)
    second.click("#wb-chat-load")
    second.wait_for_selector("#wb-chat-status:has-text('Loaded'):has-text('chat-other')", timeout=120_000)
    send(first, QUESTIONS[1])
    first.wait_for_selector("[data-testid=toast-body]:has-text('chat-other is loaded now')", timeout=30_000)
    assert first.locator("#wb-chat-tuned [data-testid=bot]").count() == 1  # nothing was asked of the new model
    assert first.locator("#wb-chat-msg textarea").input_value() == QUESTIONS[1]
    first.wait_for_selector("#wb-chat-status:has-text('chat-other')")  # the status line says what is loaded now
    shot(first, "chat-replaced-elsewhere")
    first.get_by_text("Clear", exact=True).click()  # the button under the message box (not the chatbot's icon)
    send(first, QUESTIONS[1])
    first.wait_for_function("() => document.querySelectorAll('#wb-chat-tuned [data-testid=bot]').length === 1"
                            " && document.querySelector('#wb-chat-msg textarea').value === ''", timeout=90_000)
    first.context.close()
    second.context.close()


def test_five_turns_side_by_side(run, engine_replies, shared_page):
    """Each of five turns is answered in both panes with the engine's reply to that pane's history, and
    both panes keep every earlier turn (the second message used to fail and wipe the first exchange). Its page,
    reloaded at the end, is the Serve test's."""
    tuned_replies = engine_replies(TUNED, QUESTIONS)
    base_replies = engine_replies(None, QUESTIONS)
    assert tuned_replies != base_replies  # the adapter changes the answers: each pane is checked against its own
    page = shared_page
    open_chat(page, run)
    page.click("#wb-chat-load")
    page.wait_for_selector("#wb-chat-status:has-text('Loaded')", timeout=120_000)
    page.locator("#wb-side-by-side input").check()
    page.wait_for_selector("#wb-chat-base", state="visible")
    for turn, question in enumerate(QUESTIONS, 1):
        send(page, question, enter=turn % 2 == 0)  # Send and Enter both
        wait_for_reply(page, "#wb-chat-tuned", turn, tuned_replies[turn - 1])
        wait_for_reply(page, "#wb-chat-base", turn, base_replies[turn - 1])
        assert_history(page, "#wb-chat-tuned", QUESTIONS[:turn], tuned_replies[:turn])
        assert_history(page, "#wb-chat-base", QUESTIONS[:turn], base_replies[:turn])
        assert error_badges(page) == 0 and not toasts(page), toasts(page)
    shot(page, "chat-five-turns")
    # after a reload the page says what Send answers with: the worker still holds the run
    page.reload()
    page.get_by_role("tab", name="Chat").click()
    page.wait_for_selector(f"#wb-chat-status:has-text('Loaded'):has-text('{run}')", timeout=30_000)
    assert page.locator("#wb-chat-run input").input_value() == run


def test_serve_from_the_page_then_stop(run, shared_page):
    """Serve in the API box starts the OpenAI-compatible server: the status line gives its address and models, the
    examples use its port, a reload still says it serves; Stop serving ends it. On the page the side-by-side test
    left reloaded on the Chat tab (a page of its own where that test did not run)."""
    page = shared_page
    page.get_by_role("tab", name="Chat").click()
    page.locator("#wb-chat-api-box").get_by_text("Use it from other tools").click()
    page.click("#wb-serve")
    serving = "#wb-serve-status:has-text('Serving at http://127.0.0.1:')"
    page.wait_for_selector(serving, timeout=120_000)
    status = page.locator("#wb-serve-status").inner_text()
    port = re.search(r"127\.0\.0\.1:(\d+)/v1", status).group(1)
    assert run in status.partition("models:")[2], status
    page.wait_for_selector(f"#wb-chat-api:has-text('--port {port}')")
    shot(page, "chat-serving")
    page.reload()  # the page asks the server's manager again: it still serves
    page.get_by_role("tab", name="Chat").click()
    page.locator("#wb-chat-api-box").get_by_text("Use it from other tools").click()
    page.wait_for_selector(f"#wb-serve-status:has-text(':{port}/v1')", timeout=30_000)
    page.click("#wb-serve-stop")
    page.wait_for_selector("#wb-serve-status:has-text('Not serving.')", timeout=30_000)
    assert not toasts(page), toasts(page)
