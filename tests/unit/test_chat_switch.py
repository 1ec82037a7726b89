"""The Chat tab's conversation when the model changes (webui.tabs.chat.loader, unload): loading another run or
adapter folder starts a fresh conversation in both columns (the tuned and the base model's), with the first answer
of the load, before a message sent while it loads reads them; loading the loaded source again keeps it; after
Unload the conversation stays to be read, and the next load starts afresh. Before, the conversation on screen
stayed and the new model continued the old model's replies."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from webui.context import AppContext
from webui.tabs import chat

TALK = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "An old model."}]


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    """A workspace whose chat worker is replaced by its bookkeeping: a load records what it was given."""
    ctx = AppContext.create(tmp_path / "ws")

    def load(base: str, adapters: dict[str, str], **_options: object) -> dict:
        ctx.chat.loaded = {"model": base, "device": "cpu", "adapters": list(adapters), "sources": dict(adapters)}
        return ctx.chat.loaded

    monkeypatch.setattr(ctx.chat, "load", load)
    return ctx


def adapter(ctx: AppContext, name: str, base: str) -> str:
    folder = ctx.workspace / "adapters" / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    return str(folder)


def pressed_load(ctx: AppContext, folder: str) -> list[tuple]:
    """Every answer of the Load button: (status, ask row, tuned conversation, base conversation, tool-result tick,
    what the conversation is held with)."""
    return list(chat.loader("cpu")(ctx, None, folder, None))


def test_another_model_starts_a_fresh_conversation_in_both_columns(ctx):
    first, other = adapter(ctx, "first", "org/base"), adapter(ctx, "other", "org/other-base")
    assert pressed_load(ctx, first)[0][2:5] == ([], [], False)  # nothing was loaded: whatever was on screen goes
    again = pressed_load(ctx, first)  # Load pressed again on the loaded adapter: the conversation goes on
    assert [answer[2:5] for answer in again] == [(gr.skip(),) * 3] * 2
    switched = pressed_load(ctx, other)
    loading, loaded = switched
    assert "Loading other" in loading[0] and loading[2:5] == ([], [], False)  # emptied before the new model loads
    assert loaded[2:5] == (gr.skip(),) * 3 and loaded[0] == "Loaded **other-base** on cpu · adapters: other"
    assert ctx.chat.loaded["model"] == "org/other-base"
    assert loading[5] == gr.skip() and loaded[5] == chat.held_key(ctx)  # the page's conversation is now this model's


def test_a_refused_load_keeps_the_conversation_and_a_load_after_unload_starts_afresh(ctx):
    pressed_load(ctx, adapter(ctx, "first", "org/base"))
    with pytest.warns(UserWarning, match="holds no adapter_config.json"):
        refused = pressed_load(ctx, str(ctx.workspace / "adapters"))  # a folder without adapter_config.json
    assert [answer[2:5] for answer in refused] == [(gr.skip(),) * 3]
    first = str(ctx.workspace / "adapters" / "first")
    assert chat.unload(ctx) == "Unloaded: the worker's memory is free." and ctx.chat.loaded is None
    assert pressed_load(ctx, first)[0][2:5] == ([], [], False)  # the conversation was the unloaded model's


def test_each_load_button_answers_both_columns(ctx):
    """The three load buttons (Load, load on the GPU anyway, load on the CPU) send the loader's five answers to the
    status line, the ask row and the conversation of both columns."""
    import inspect as pyinspect

    with gr.Blocks() as app, gr.Tabs():
        chat.build_chat_tab(ctx, app)
    loads = [fn for fn in app.fns.values() if fn.fn is not None and pyinspect.unwrap(fn.fn).__qualname__ ==
             "loader.<locals>.handler"]
    assert len(loads) == 3
    for fn in loads:
        ids = [getattr(block, "elem_id", None) for block in fn.outputs]
        assert len(ids) == 6 and ids[0] == "wb-chat-status", ids
        assert ids[2:5] == ["wb-chat-tuned", "wb-chat-base", "wb-chat-tool-result"], ids
        assert isinstance(fn.outputs[5], gr.State)  # what the conversation is held with (chat.held_key)
