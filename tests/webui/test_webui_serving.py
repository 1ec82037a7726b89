"""The Chat tab's Serve / Stop serving (webui/tabs/chat_serve.py over webui.jobs.serving.ServeManager) on the shared
tool-call run's workspace (trained once per test session, tests/engine/test_chat_tools.py): Serve pressed from a
thread that ends at once, as Gradio's idle pool threads do, still serves; the status line and the examples name
the port; GET /v1/models answers with the key typed in the page (and 401 without it), a key never on the command
line; Stop ends the process and reaps it. A server that dies while starting is reported at once with its sentence.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.engine.test_chat_tools import TOOL_RUN, shared_tool_run
from webui.i18n import words
from webui.jobs.serving import ServeManager, ServeSource, ServingError

KEY = "page-key-42"
BASE = "hermes-tiny"  # the tool-call run's base model, served beside it


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory):
    from webui.context import AppContext

    context = AppContext.create(shared_tool_run(tmp_path_factory).parents[1])
    yield context
    context.serve.stop()


def press(handler, *args) -> list:
    """Run a Gradio handler to its end in a thread of its own, which then ends; its updates."""
    updates: list = []
    thread = threading.Thread(target=lambda: updates.extend(handler(*args)))
    thread.start()
    thread.join(timeout=300)
    return updates


def test_serve_answers_on_its_port_and_stop_ends_it(ctx) -> None:
    from webui.tabs import chat_serve

    updates = press(chat_serve.serve, ctx, f"  {KEY} ")
    state = ctx.serve.state()
    assert state.state == "serving" and state.models == (TOOL_RUN, BASE), updates
    url = f"http://127.0.0.1:{state.port}/v1"
    assert updates[0][0].startswith(f"Starting the server on port {state.port}")
    assert updates[-1][0] == f"Serving at {url} — models: {TOOL_RUN}, {BASE}"
    assert f"--port {state.port}" in updates[-1][1] and f'base_url="{url}"' in updates[-1][1]
    assert chat_serve.serve_view(ctx) == updates[-1][0]  # what a reload shows
    time.sleep(0.5)  # the pressing thread is gone: a server tied to it would be killed now
    listed = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert [model["id"] for model in listed.json()["data"]] == [TOOL_RUN, BASE]
    assert httpx.get(f"{url}/models", timeout=30).status_code == 401
    process = ctx.serve._proc
    assert KEY not in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()

    status, api = chat_serve.stop(ctx)
    assert status == "Not serving." and process.returncode is not None  # ended and reaped
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    assert api.startswith("# No model is loaded")


def test_a_server_that_cannot_start_is_reported_at_once_with_its_sentence(tmp_path: Path) -> None:
    """A port already taken: the engine refuses before loading anything, and start() says so with its sentence."""
    from webui.tabs.chat_serve import serve_status

    manager = ServeManager(tmp_path / "serve.log")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(ServingError, match=rf"\(exit code 2\): port {port} on 127.0.0.1 is already in use"):
            manager.start(ServeSource(workspace=str(tmp_path)), port=port)
    assert time.monotonic() - began < 30
    state = manager.state()
    assert state.state == "stopped" and serve_status(state, words(None)) == f"Not serving: {state.error}"


def test_a_workspace_with_nothing_to_serve_is_a_toast_and_a_stopped_status(tmp_path: Path) -> None:
    from webui.context import AppContext
    from webui.tabs import chat_serve

    empty = AppContext.create(tmp_path / "ws")
    *_, (status, _api) = press(chat_serve.serve, empty, "")
    assert status.startswith("Not serving: The server stopped (exit code 2): ") and status.endswith(
        "holds no finished run to serve: train one first, or serve a model folder with --model DIR."), status
    assert empty.serve.state().state == "stopped"
