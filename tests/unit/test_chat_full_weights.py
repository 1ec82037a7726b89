"""A full or freeze run loaded into the chat is worded by what was loaded: its own full weights, not an adapter.

New-user test: Chat's status line said "adapters: alpaca-freeze" for a freeze run, which has no adapter. The chat
worker's load reply now names such sources under "full_models" (engine.chat.worker), and the status line
(webui.tabs.chat_loaded.loaded_status) words them as full weights, in English and in Chinese."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.chat.session import ChatSession, LoadPlan
from engine.chat.worker import Worker
from engine.jobs.events import Reply, parse
from tests import run_folders
from webui.context import AppContext
from webui.i18n import words
from webui.tabs import chat_loaded

CHINESE = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={})


def freeze_run(ctx: AppContext, name: str) -> Path:
    run = run_folders.write_run(ctx, name, method="freeze", model="org/tiny")
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text("{}")
    (run / "model" / "model.safetensors").write_bytes(b"")
    return run


def test_the_worker_names_a_full_run_among_its_full_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The load reply, as the worker answers it; the models themselves are not loaded (execute records the plan)."""

    def execute(session: ChatSession, plan: LoadPlan) -> None:
        session.model, session.model_name = object(), plan.model
        session.adapters = [source.name for source in plan.sources]
        session.full_models = {source.name: object() for source in plan.full_models}

    monkeypatch.setattr(ChatSession, "execute", execute)
    run = freeze_run(AppContext.create(tmp_path / "ws"), "alpaca-freeze")
    out = io.StringIO()
    Worker(out).handle_line(json.dumps({"id": 1, "op": "load", "model": None, "adapters": {"tuned": str(run)}}))
    reply = parse(out.getvalue().splitlines()[-1])
    assert isinstance(reply, Reply) and reply.data["adapters"] == ["tuned"], reply
    assert reply.data["full_models"] == ["tuned"] and reply.data["model"] == "org/tiny"


def test_the_status_line_words_a_full_run_as_its_full_weights(tmp_path: Path):
    ctx = AppContext.create(tmp_path / "ws")
    run = freeze_run(ctx, "alpaca-freeze")
    ctx.chat.loaded = {"model": "org/tiny", "device": "cpu", "adapters": ["tuned"], "full_models": ["tuned"],
                       "sources": {"tuned": str(run)}}
    english = chat_loaded.loaded_status(ctx, words(None))
    assert english == "Loaded **tiny** on cpu · full weights (no adapter): alpaca-freeze", english
    chinese = chat_loaded.loaded_status(ctx, words(CHINESE))
    assert chinese == "已在 cpu 上加载 **tiny** · 完整权重（无适配器）：alpaca-freeze", chinese
    ctx.chat.loaded["full_models"] = []  # an adapter run, as before
    assert chat_loaded.loaded_status(ctx, words(None)).endswith(" · adapters: alpaca-freeze")
