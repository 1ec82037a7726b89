"""The chat worker client (webui.chat_client) against a fake worker that speaks the JSON-lines protocol,
and the Chat tab's 'ask before loading onto a busy GPU' rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from webui.chat_client import ChatClient, ChatError

FAKE_WORKER = r'''
import json, sys
print(json.dumps({"event": "ready"}), flush=True)
loaded = False
for line in sys.stdin:
    req = json.loads(line)
    rid, op = req.get("id"), req.get("op")
    def send(**m):
        print(json.dumps({"id": rid, **m}), flush=True)
    if op == "load":
        loaded = True
        send(event="loaded", model=req["model"], adapters=list(req["adapters"]), device="cpu")
    elif op == "generate":
        if not loaded:
            send(event="error", message="No model is loaded: send a load request first.")
            continue
        words = ["Hello ", "from ", str(req["adapter"]), "."]
        for w in words:
            send(event="chunk", text=w)
        send(event="done", text="".join(words), new_tokens=4, tokens_per_s=1.0)
    elif op == "unload":
        loaded = False
        send(event="unloaded")
    elif op == "crash":
        sys.exit(3)
    elif op == "shutdown":
        send(event="bye")
        break
'''


@pytest.fixture
def client(tmp_path: Path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    chat = ChatClient(tmp_path / "worker.log", argv=lambda: [sys.executable, str(script)])
    yield chat
    chat.stop()


def test_load_stream_unload(client):
    with pytest.raises(ChatError, match="No model is loaded"):
        list(client.generate([{"role": "user", "content": "hi"}], None))
    assert client.load("base", {"tuned": "/runs/x"})["adapters"] == ["tuned"]
    replies = list(client.generate([{"role": "user", "content": "hi"}], "tuned", temperature=0.0))
    assert replies[:3] == ["Hello ", "Hello from ", "Hello from tuned"]
    assert replies[-1] == "Hello from tuned."
    client.unload()
    assert client.loaded is None and client.running


def test_worker_death_is_an_error_not_a_hang(client):
    client.load("base", {})
    with pytest.raises(ChatError, match="stopped"):
        client.call("crash")
    assert not client.running
    client.load("base", {})  # a new worker starts on the next request
    assert client.running


def test_loading_asks_first_while_training_holds_the_gpu(tmp_path: Path, monkeypatch):
    from webui.context import AppContext
    from webui.tabs import chat

    ctx = AppContext.create(tmp_path / "ws")
    monkeypatch.setattr(ctx.runs, "active", lambda: "run-1")
    monkeypatch.setattr(AppContext, "gpu_present", lambda self: True)
    status, confirm = chat.load(ctx, "run-1", "", mode="ask")
    assert "run-1 is training on the GPU" in status and confirm["visible"] is True
    assert not ctx.chat.running  # nothing was loaded
