"""The chat worker client (webui.jobs.chat_client) against a fake worker that speaks the worker's protocol (JSON
requests in, engine.jobs.events events out), the Chat tab's history as the worker receives it, and the Chat tab's
'ask before loading onto a busy GPU' rule."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from engine.sampling import SamplingConfig
from webui.jobs.chat_client import ChatClient, ChatWorkerError, worker_messages

ROOT = Path(__file__).resolve().parents[2]

FAKE_WORKER = r'''
import json, sys
sys.path.insert(0, sys.argv[2])  # the repository: the fake speaks through the engine's own event schema
from engine.jobs.events import Chunk, Reply, Status, to_line

received = open(sys.argv[1], "a")  # every generate request's messages, one JSON list a line
def emit(event):
    print(to_line(event), flush=True)
emit(Status(state="ready"))
loaded = False
for line in sys.stdin:
    req = json.loads(line)
    rid, op = req.get("id"), req.get("op")
    def fail(error):
        emit(Status(state="failed", error=error, id=rid))
    if op == "load":
        loaded = req["model"] != "broken"  # a load that fails half way has unloaded the model before
        if loaded:
            emit(Reply(op="load", data={"model": req["model"], "adapters": list(req["adapters"]), "device": "cpu"},
                       id=rid))
        else:
            fail("The worker cannot load broken.")
    elif op == "status":
        emit(Reply(op="status", data={"loaded": loaded}, id=rid))
    elif op == "generate":
        if not loaded:
            fail("No model is loaded: send a load request first.")
            continue
        received.write(json.dumps(req["messages"]) + "\n"); received.flush()
        with open(sys.argv[1] + ".settings", "a") as settings:  # the rest of the request: system and sampling
            rest = {k: v for k, v in req.items() if k not in ("id", "op", "messages", "adapter", "tools")}
            settings.write(json.dumps(rest) + "\n")
        if not all(isinstance(m.get("content"), str) for m in req["messages"]):  # as the engine's check_messages
            fail("Message 1 must be an object with role and content (a string).")
            continue
        if req["messages"][-1]["content"] == "fail":
            fail("Generation failed: boom.")
            continue
        if req.get("tools") and req["messages"][-1]["content"] == "Weather in Paris?":  # answers with a tool call
            call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
            emit(Chunk(text="get_weather", id=rid))
            emit(Reply(op="generate", data={"text": "get_weather", "content": "Let me look.", "tool_calls": [call],
                                            "new_tokens": 9, "tokens_per_s": 1.0}, id=rid))
            continue
        words = ["Hello ", "from ", str(req["adapter"]), "."]
        for w in words:
            emit(Chunk(text=w, id=rid))
        emit(Reply(op="generate", data={"text": "".join(words), "new_tokens": 4, "tokens_per_s": 1.0}, id=rid))
    elif op == "unload":
        loaded = False
        emit(Reply(op="unload", id=rid))
    elif op == "crash":
        sys.exit(3)
    elif op == "shutdown":
        emit(Reply(op="shutdown", id=rid))
        break
'''


@pytest.fixture
def client(tmp_path: Path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    chat = ChatClient(tmp_path / "worker.log",
                      argv=lambda: [sys.executable, str(script), str(tmp_path / "received"), str(ROOT)])
    yield chat
    chat.stop()


def test_load_stream_unload(client):
    with pytest.raises(ChatWorkerError, match="No model is loaded"):
        list(client.generate([{"role": "user", "content": "hi"}], None))
    assert client.load("base", {"tuned": "/runs/x"})["adapters"] == ["tuned"]
    replies = list(client.generate([{"role": "user", "content": "hi"}], "tuned"))
    assert replies[:3] == ["Hello ", "Hello from ", "Hello from tuned"]
    assert replies[-1] == "Hello from tuned."
    client.unload()
    assert client.loaded is None and client.running


def test_worker_death_is_an_error_not_a_hang(client):
    client.load("base", {})
    with pytest.raises(ChatWorkerError, match="stopped"):
        client.call("crash")
    assert not client.running and client.loaded is None  # the model went with the worker
    client.load("base", {})  # a new worker starts on the next request
    assert client.running


def test_a_worker_that_dies_while_starting_is_reported_at_once(tmp_path: Path):
    """Not after the 120 s ready timeout: the reader sees the worker's end and wakes the start."""
    chat = ChatClient(tmp_path / "worker.log", argv=lambda: [sys.executable, "-c", "import sys; sys.exit(3)"])
    began = time.monotonic()
    with pytest.raises(ChatWorkerError, match=r"did not start \(it ended with exit code 3\)"):
        chat.start()
    assert time.monotonic() - began < 10 and not chat.running


def test_loading_asks_first_while_training_holds_the_gpu(tmp_path: Path, monkeypatch):
    from webui.context import AppContext
    from webui.tabs import chat

    ctx = AppContext.create(tmp_path / "ws")
    monkeypatch.setattr(ctx.runs, "active", lambda: "run-1")
    monkeypatch.setattr(AppContext, "gpu_present", lambda _self: True)
    status, confirm = chat.load(ctx, "run-1", "", mode="ask")
    assert "run-1 is training on the GPU" in status and confirm["visible"] is True
    assert not ctx.chat.running  # nothing was loaded


def received(tmp_path: Path) -> list[list[dict]]:
    """The messages of every generate request the fake worker got."""
    return [json.loads(line) for line in (tmp_path / "received").read_text().splitlines()]


def chatbot_round_trip(history: list[dict]) -> list[dict]:
    """What a Chat tab handler gets back from gr.Chatbot for a history it sent to the page (gradio's own code)."""
    import gradio as gr

    chatbot = gr.Chatbot()
    return chatbot.preprocess(chatbot.postprocess(history))


def test_chatbot_history_becomes_plain_messages():
    from webui.tabs.chat import text_message

    history = chatbot_round_trip([text_message("user", "Who are you?"), text_message("assistant", "  I am Zork.\n"),
                                  {"role": "user", "content": "plain"},
                                  {"role": "assistant", "content": "thinking", "metadata": {"title": "Tool"}}])
    assert not isinstance(history[0]["content"], str)  # gradio 6 hands back a list of parts
    assert worker_messages(history) == [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "  I am Zork.\n"},  # kept exactly as the model wrote it
        {"role": "user", "content": "plain"},
        {"role": "assistant", "content": "thinking"},
    ]
    parts = [{"type": "text", "text": "Look at"}, {"type": "file", "file": {"path": "/x.png"}}, {"type": "text",
                                                                                                 "text": "this."}]
    assert worker_messages([{"role": "user", "content": parts}]) == [{"role": "user", "content": "Look at\nthis."}]


@pytest.fixture
def chat_ctx(tmp_path: Path, client):
    from webui.context import AppContext

    ctx = AppContext.create(tmp_path / "ws")
    ctx.chat = client
    return ctx


SHORT = SamplingConfig(max_new_tokens=32)


def ask(ctx, text: str, tuned: list, base: list, side_by_side: bool = False, tools: str = "",
        as_result: bool = False, with_tick: bool = False) -> tuple:
    """The Chat tab's send handler, run to its end: what (message box, tuned pane, base pane) then hold, and the
    'send as tool result' tick with_tick. The box is emptied by the first update and left alone by the others,
    so that what is typed while a reply streams stays."""
    from webui.tabs import chat

    updates = list(chat.respond(ctx, text, tuned, base, side_by_side, "", SHORT, tools, as_result))
    assert all(update[0] == chat.gr.skip() for update in updates[1:-1])  # the stream leaves the box alone
    boxes = [update[0] for update in updates if update[0] != chat.gr.skip()]
    last = (boxes[-1] if boxes else None, *updates[-1][1:4])
    return last if with_tick else last[:3]


def test_send_collects_the_sampling_widgets_into_one_settings_value(chat_ctx, tmp_path: Path):
    from webui.tabs import chat

    chat_ctx.chat.load("base", {"tuned": "/runs/x"})
    widgets = [64.0, 0.7, 0.9, 40.0, 1.1, 7]  # as gradio sends them, in SAMPLING_OPTIONS' order: sliders as floats
    list(chat.send_message(chat_ctx, None, "hi", [], [], False, "Be brief.", "", False, None, *widgets))
    sent = (tmp_path / "received.settings").read_text().splitlines()
    assert json.loads(sent[-1]) == {"system": "Be brief.", "max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9,
                                    "top_k": 40, "repetition_penalty": 1.1, "seed": 7}
    with pytest.warns(UserWarning, match=r"^top_p is 1\.5: input should be less than or equal to 1\.$"):
        updates = list(chat.send_message(chat_ctx, None, "hi", [], [], False, "", "", False, None,
                                         64, 0.7, 1.5, 40, 1, 7))
    assert all(u["__type__"] == "update" and len(u) == 1 for u in updates[-1])  # nothing changes, nothing sent
    assert len((tmp_path / "received.settings").read_text().splitlines()) == len(sent)


def test_second_message_sends_the_history_as_strings(chat_ctx, tmp_path: Path):
    chat_ctx.chat.load("base", {"tuned": "/runs/x"})
    box, tuned, base = ask(chat_ctx, "Who are you?", [], [], side_by_side=True)
    assert box == "" and len(tuned) == len(base) == 2
    box, tuned, base = ask(chat_ctx, "What is your name?", chatbot_round_trip(tuned), chatbot_round_trip(base), True)
    assert box == "" and [m["role"] for m in tuned] == ["user", "assistant"] * 2 and len(base) == 4
    tuned_request, base_request = received(tmp_path)[-2:]  # each pane sends its own history
    for request, adapter in ((tuned_request, "tuned"), (base_request, None)):
        assert request == [{"role": "user", "content": "Who are you?"},
                           {"role": "assistant", "content": f"Hello from {adapter}."},
                           {"role": "user", "content": "What is your name?"}]


def test_worker_error_keeps_the_conversation(chat_ctx):
    chat_ctx.chat.load("base", {"tuned": "/runs/x"})
    _, tuned, base = ask(chat_ctx, "Who are you?", [], [], side_by_side=True)
    tuned, base = chatbot_round_trip(tuned), chatbot_round_trip(base)
    with pytest.warns(UserWarning, match="Generation failed: boom."):
        box, tuned_after, base_after = ask(chat_ctx, "fail", tuned, base, side_by_side=True)
    assert box == "fail" and tuned_after == tuned and base_after == base  # the message stays in the box to resend
    with pytest.raises(ChatWorkerError, match="stopped"):
        chat_ctx.chat.call("crash")  # the worker dies, and its model with it
    with pytest.warns(UserWarning, match="No model is loaded: choose a finished run and press Load."):
        ask(chat_ctx, "What is your name?", tuned, [])


def test_no_model_loaded_says_so_and_keeps_the_conversation(chat_ctx):
    from webui.tabs import chat

    history = chatbot_round_trip([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    with pytest.warns(UserWarning, match="No model is loaded: choose a finished run and press Load."):
        updates = list(chat.respond(chat_ctx, "again", history, [], False, "", SHORT))
    assert all(u["__type__"] == "update" and len(u) == 1 for u in updates[-1])  # gr.skip(): nothing changes
    assert not chat_ctx.chat.running  # no worker was started for it


def test_a_conversation_answered_by_a_model_another_page_replaced_is_refused(chat_ctx, tmp_path: Path):
    """The worker is the workspace's one chat model: a run loaded on another page (or in another browser) replaced
    the one this page's conversation was answered by, and Send went on as if the replies on screen were the new
    model's (a rating then paired one model's answer with another's). Send now says so and keeps the message; the
    same model loaded again, or a fresh conversation, goes on."""
    from webui.tabs import chat

    chat_ctx.chat.load("base", {"tuned": "/runs/first"})
    updates = list(chat.respond(chat_ctx, "Who are you?", [], [], False, "", SHORT))
    held = updates[0][4]
    assert held == chat.held_key(chat_ctx) and all(update[4] == chat.gr.skip() for update in updates[1:])
    tuned = chatbot_round_trip(updates[-1][1])
    sent = len(received(tmp_path))
    chat_ctx.chat.load("base", {"tuned": "/runs/second"})  # another page's Load
    with pytest.warns(UserWarning, match=r"^The chat model was replaced .*: second is loaded now"):
        refused = list(chat.respond(chat_ctx, "And you?", tuned, [], False, "", SHORT, held=held))
    assert all(u["__type__"] == "update" and len(u) == 1 for u in refused[-1]) and len(received(tmp_path)) == sent
    assert list(chat.respond(chat_ctx, "Hello", [], [], False, "", SHORT, held=held))[-1][1]  # Clear: goes on
    chat_ctx.chat.load("base", {"tuned": "/runs/first"})  # the conversation's own model again: goes on
    assert len(list(chat.respond(chat_ctx, "And you?", tuned, [], False, "", SHORT, held=held))[-1][1]) == 4


def test_failed_load_forgets_a_model_the_worker_no_longer_holds(client):
    client.load("base", {"tuned": "/runs/x"})
    with pytest.raises(ChatWorkerError, match="cannot load"):
        client.load("broken", {})
    assert client.loaded is None


WEATHER_TOOLS = json.dumps([{"name": "get_weather", "parameters": {"type": "object"}}])


def test_a_tool_call_is_shown_as_a_call_and_answered_with_a_result(chat_ctx, tmp_path: Path):
    chat_ctx.chat.load("base", {"tuned": "/runs/x"})
    box, tuned, _, tick = ask(chat_ctx, "Weather in Paris?", [], [], tools=WEATHER_TOOLS, with_tick=True)
    assert box == "" and tick is True  # the answer to a call is a tool result: ticked for the visitor
    assert [(m["role"], m["content"][0]["text"], m.get("metadata")) for m in tuned[1:]] == [
        ("assistant", "Let me look.", None),
        ("assistant", 'get_weather({"city": "Paris"})', {"title": "Tool call", "id": "tool_call"})]

    box, tuned, _, tick = ask(chat_ctx, '{"celsius": 21}', chatbot_round_trip(tuned), [], tools=WEATHER_TOOLS,
                              as_result=True, with_tick=True)
    assert box == "" and tick is False
    assert tuned[3]["metadata"] == {"title": "Tool result", "id": "tool_result"}
    assert received(tmp_path)[-1] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me look.",
         "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "content": '{"celsius": 21}'},
    ]


@pytest.mark.parametrize(("tools", "words"), [
    ("[{", r"^Tools \(JSON\) is not valid JSON \(Expecting property name enclosed in double quotes at line 1, "
           r"column 3\): fix it or empty the box\.$"),
    ('{"name": "get_weather"}', r"^Tools \(JSON\) must be a list of function schemas, like \[\{\"name\""),
])
def test_a_tool_list_that_is_not_a_json_list_is_one_sentence(chat_ctx, tmp_path: Path, tools: str, words: str):
    from webui.tabs import chat

    chat_ctx.chat.load("base", {"tuned": "/runs/x"})
    with pytest.warns(UserWarning, match=words):
        updates = list(chat.respond(chat_ctx, "hi", [], [], False, "", SHORT, tools, False))
    assert all(u["__type__"] == "update" and len(u) == 1 for u in updates[-1])  # nothing changes, nothing sent
    assert (tmp_path / "received").read_text() == ""
    import html
    import re
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # leaving the box says it under the box, not in a second toast
        note = chat.check_tools_box(tools)
    shown = html.unescape(re.sub(r"<[^>]+>", "", note["value"]))
    assert note["visible"] is True and re.match(words, shown) and "wb-error" in note["value"]
    assert chat.check_tools_box('[{"name": "f"}]')["visible"] is False


def test_tool_calls_and_results_in_the_history_become_worker_turns():
    from webui.jobs.chat_tools import result_message, text_message

    say = {"chat.tool_call": "Tool call", "chat.tool_result": "Tool result"}.get
    call = text_message("assistant", 'lookup({"q": "x"})', title="Tool call", id="tool_call")
    history = chatbot_round_trip([text_message("user", "Find x and y."), call,
                                  text_message("assistant", 'lookup({"q": "y"})', title="Tool call", id="tool_call"),
                                  result_message("1", say), result_message("2", say)])
    assert worker_messages(history) == [
        {"role": "user", "content": "Find x and y."},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "lookup", "arguments": {"q": "x"}},
                                                            {"name": "lookup", "arguments": {"q": "y"}}]},
        {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"},
    ]



def test_status_names_the_loaded_run_not_the_adapter_slot(chat_ctx):
    """After loading one run then another, the status line names the run now loaded (the worker calls every
    adapter 'tuned')."""
    from webui.i18n import words
    from webui.tabs import chat

    for run in ("first-run", "second-run"):
        chat_ctx.chat.load("base", {"tuned": f"/ws/runs/{run}"})
        status = chat.loaded_status(chat_ctx, words(None))
        assert f"adapters: {run}" in status and "tuned" not in status, status


def test_a_run_started_from_another_run_names_that_starting_point_beside_the_base(chat_ctx):
    """A DPO run started from an SFT run: its second column answers from the base with the SFT run merged (the
    worker's load reply says "start"), and its title and the status line say so, not "Base model"."""
    from webui.i18n import words
    from webui.tabs import chat, chat_loaded

    chat_ctx.chat.load("base", {"tuned": "/ws/runs/plain-run"})
    assert chat_loaded.base_label(chat_ctx, words(None))["label"] == "Base model"
    assert "Loaded **base** on" in chat.loaded_status(chat_ctx, words(None))
    chat_ctx.chat.loaded["start"] = "/ws/runs/sft-run"  # as the worker's reply has it for a run with model.adapter
    assert chat_loaded.base_label(chat_ctx, words(None))["label"] == "Starting point: base model + run sft-run"
    assert "Loaded **base + sft-run** on" in chat.loaded_status(chat_ctx, words(None))
    chat_ctx.chat.loaded["start"] = "/ws/runs/sft-run/adapter"
    assert chat_loaded.base_label(chat_ctx, words(None))["label"].endswith("run sft-run")
    chat_ctx.chat.unload()
    assert chat_loaded.base_label(chat_ctx, words(None))["label"] == "Base model"


def test_the_api_box_shows_how_to_serve_the_loaded_run(chat_ctx):
    """A run of the workspace is served by its run name from the workspace; an adapter folder elsewhere is not a
    served name, so the box shows the base model alone (`serve --model`); nothing loaded, a sentence saying so."""
    from webui.tabs import chat_serve

    assert chat_serve.api_usage(chat_ctx) == "# No model is loaded: choose a finished run and press Load."
    chat_ctx.chat.load("base", {"tuned": str(chat_ctx.workspace / "runs" / "my-run" / "adapter")})
    text = chat_serve.api_usage(chat_ctx)
    assert f"python launch.py serve --workspace {chat_ctx.workspace} --port 8000" in text
    assert 'model="my-run"' in text and '"model": "my-run"' in text and "http://127.0.0.1:8000/v1" in text
    chat_ctx.chat.load("org/base", {"tuned": "/elsewhere/adapter-folder"})
    text = chat_serve.api_usage(chat_ctx)
    assert "python launch.py serve --model org/base --port 8000" in text and 'model="org/base"' in text
