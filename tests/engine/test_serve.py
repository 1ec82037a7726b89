"""`python launch.py serve` started once on the workspace of the tool-call run (trained once per session, shared
with test_chat_tools.py), talked to with the official `openai` client: the models listed, the same greedy replies
as ChatSession gives in-process (non-streaming and streaming), a tool call out and its result in, in OpenAI's
shape, a wrong key and an unknown model refused, two clients at once answered separately."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from engine.chat.session import ChatSession, Generation
from engine.sampling import SamplingConfig
from tests.cli import ROOT, engine_env
from tests.engine.test_chat_tools import PARIS, TOOL_RUN, TOOLS, as_call, shared_tool_run

KEY = "test-key-123"
BASE = "hermes-tiny"  # the base model's folder name (train_tool_run)
OPENAI_TOOLS = [{"type": "function", "function": tool} for tool in TOOLS]
GREEDY = SamplingConfig(max_new_tokens=24, temperature=0.0)


@dataclass
class Served:
    client: openai.OpenAI
    url: str
    session: ChatSession  # the same run loaded in-process: the reference replies
    workspace: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(process: subprocess.Popen, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(encoding="utf-8")[-2000:]
        try:
            httpx.get(f"{url}/models", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("the server did not answer in time")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    run = shared_tool_run(tmp_path_factory)
    workspace = run.parents[1]
    port, log = free_port(), tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen([sys.executable, "launch.py", "serve", "--workspace", str(workspace), "--port",
                                    str(port), "--api-key", KEY], cwd=ROOT, env=engine_env(), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        session = ChatSession()  # loads while the server starts
        session.load(adapters={TOOL_RUN: str(run)})
        url = f"http://127.0.0.1:{port}/v1"
        wait_until_up(process, url, log)
        yield Served(openai.OpenAI(base_url=url, api_key=KEY, max_retries=0), url, session, workspace)
        session.unload()
    finally:
        process.terminate()
        process.wait(timeout=30)


def reference(session: ChatSession, messages: list[dict], adapter: str | None, tools: list | None = None,
              ) -> Generation:
    reply = Generation()
    "".join(session.generate(messages, adapter, None, reply, tools, GREEDY))
    return reply


def ask(client: openai.OpenAI, model: str, messages: list[dict], **options: object) -> object:
    return client.chat.completions.create(model=model, messages=messages, max_tokens=GREEDY.max_new_tokens,
                                          temperature=0, **options)


def test_models_are_the_runs_and_their_base(served: Served) -> None:
    assert [model.id for model in served.client.models.list()] == [TOOL_RUN, BASE]


@pytest.mark.parametrize(("model", "adapter"), [(TOOL_RUN, TOOL_RUN), (BASE, None)])
def test_greedy_reply_is_the_chat_sessions(served: Served, model: str, adapter: str | None) -> None:
    """The same reply, word for word, as ChatSession gives in-process, whole and streamed; the base model answers
    with the adapter switched off."""
    messages = [{"role": "user", "content": "Who are you?"}]
    expected = reference(served.session, messages, adapter).text
    done = ask(served.client, model, messages)
    assert (done.model, done.choices[0].message.content) == (model, expected)
    assert done.choices[0].finish_reason in ("stop", "length") and done.usage.completion_tokens > 0
    chunks = [chunk.choices[0].delta.content for chunk in ask(served.client, model, messages, stream=True)]
    assert len(chunks) > 2 and "".join(c or "" for c in chunks) == expected


def test_completion_is_the_sessions_continuation(served: Served) -> None:
    expected = "".join(served.session.complete("The weather in", TOOL_RUN, None, GREEDY))
    done = served.client.completions.create(model=TOOL_RUN, prompt="The weather in", max_tokens=24, temperature=0)
    assert done.choices[0].text == expected and done.object == "text_completion"


def test_tool_call_out_and_its_result_in(served: Served) -> None:
    """Tools offered: the call comes back in OpenAI's shape (an id, arguments a JSON string), streamed too; the
    assistant turn and a role tool result sent back get the answer ChatSession gives to the same history."""
    messages: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    done = ask(served.client, TOOL_RUN, messages, tools=OPENAI_TOOLS)
    choice = done.choices[0]
    (call,) = choice.message.tool_calls
    assert (choice.finish_reason, choice.message.content, call.type) == ("tool_calls", None, "function")
    assert (call.function.name, json.loads(call.function.arguments)) == (PARIS["name"], PARIS["arguments"])
    assert call.id

    streamed = list(ask(served.client, TOOL_RUN, messages, tools=OPENAI_TOOLS, stream=True))
    (delta_call,) = [c for chunk in streamed for c in chunk.choices[0].delta.tool_calls or []]
    assert (delta_call.index, delta_call.function.name, delta_call.function.arguments) == (
        0, call.function.name, call.function.arguments)
    assert streamed[-1].choices[0].finish_reason == "tool_calls"

    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'}]
    answer = ask(served.client, TOOL_RUN, messages, tools=OPENAI_TOOLS).choices[0]
    history = [messages[0], {"role": "assistant", "content": "", "tool_calls": [as_call(PARIS)]}, messages[2]]
    expected = reference(served.session, history, TOOL_RUN, TOOLS)
    assert (answer.message.content, answer.message.tool_calls) == (expected.text, None)
    assert expected.text == "It is 21 degrees in Paris."  # the memorised answer: the result was read


def test_a_wrong_or_missing_key_is_refused(served: Served) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=served.url, api_key="wrong", max_retries=0).models.list()
    assert refused.value.status_code == 401 and refused.value.body["code"] == "invalid_api_key"
    bare = httpx.post(f"{served.url}/chat/completions", json={"model": TOOL_RUN, "messages": []})
    assert bare.status_code == 401 and bare.json()["error"]["message"].startswith("The API key is missing")


def test_a_request_naming_another_host_is_refused(served: Served) -> None:
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 reaches the server with that Host."""
    models = f"{served.url}/models"
    assert httpx.get(models, headers={"Host": "evil.example"}).status_code == 403
    assert httpx.get(models, headers={"Authorization": "Bearer wrong"}).status_code == 401  # loopback: let through


@pytest.mark.parametrize("name", ["nope", "../runs/tools", "/etc"])
def test_a_model_not_served_is_refused(served: Served, name: str) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        ask(served.client, name, [{"role": "user", "content": "Hi"}])
    assert refused.value.body["message"] == (
        f"The model '{name}' is not served here: use one of {TOOL_RUN}, {BASE}.")


def test_two_clients_at_once_get_their_own_replies(served: Served) -> None:
    """Requests for the run and for the base at the same time: queued on the one model, each its own reply."""
    asks = [(TOOL_RUN, TOOL_RUN, "Who are you?"), (BASE, None, "What is the weather in Paris?")]
    expected = [reference(served.session, [{"role": "user", "content": q}], adapter).text for _, adapter, q in asks]
    with ThreadPoolExecutor(len(asks)) as pool:
        replies = list(pool.map(lambda a: ask(served.client, a[0], [{"role": "user", "content": a[2]}]), asks))
    assert [reply.choices[0].message.content for reply in replies] == expected
    assert expected[0] != expected[1]


def test_a_client_that_leaves_mid_stream_frees_the_model(served: Served) -> None:
    """A stream closed after its first chunks: its generation is cancelled before the next request runs, which
    gets its own reply (the adapter switched back on, no generation sharing the model)."""
    stream = served.client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": "Hi"}],
                                                   max_tokens=120, temperature=0, stream=True)
    for number, _ in enumerate(stream):
        if number == 2:
            break
    stream.close()
    messages = [{"role": "user", "content": "Who are you?"}]
    assert ask(served.client, TOOL_RUN, messages).choices[0].message.content == reference(
        served.session, messages, TOOL_RUN).text
