"""The Train tab's dataset inspection and trainable count as a visitor gets them: cached on disk and shared by
visitors and server restarts (webui.jobs.commands.EngineCache), counted without an engine process where the model's
shapes are known, failing at once for an unreachable hub id, and never showing an older request's answer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from tests.train_tab import train_tab
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms import models
from webui.forms.fields import R
from webui.jobs import commands as engine_cli
from webui.tabs.train import count as train_count
from webui.tabs.train import data as train_data
from webui.tabs.train import handlers as h

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "assets" / "models" / "workbench-demo-5m"
IDENTITY = ROOT / "assets" / "datasets" / "identity_alpaca.json"


def visitor(session: str) -> SimpleNamespace:
    """What the handlers read of a gr.Request."""
    return SimpleNamespace(session_hash=session, headers={"accept-language": "en-US"}, cookies={})


def form_args(model: str, dataset: str, method: str = "lora", r: int = 8) -> list:
    filled = {**forms.defaults(), R: r}
    return [model, dataset, [], "auto", method, *forms.widget_values(filled)]


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    context = AppContext.create(tmp_path / "ws")
    engine_cli._caches.clear()
    return context


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> list:
    """Fail any engine process; the list holds the commands that were tried."""
    tried: list = []

    def refuse(args, *_rest, **_kwargs):
        tried.append(args)
        raise AssertionError(f"an engine process was started: {args}")

    monkeypatch.setattr(engine_cli, "run_json", refuse)
    return tried


def inspected(ctx: AppContext, dataset: Path, request=None) -> list[tuple]:
    """The inspection's yields, each as (summary, preview, example, histogram, over-cutoff line)."""
    panel = train_tab(ctx).data
    outputs = (panel.summary, panel.preview, panel.example, panel.histogram, panel.over_cutoff)
    return [tuple(shown[c] for c in outputs) for shown in
            train_data.inspect(ctx, panel, "", str(dataset), [], "auto", 256, "truncate", request)]


def test_inspection_is_shared_by_visitors_and_restarts(ctx, monkeypatch):
    dataset = ctx.uploads / "identity.json"
    dataset.write_bytes(IDENTITY.read_bytes())
    first = inspected(ctx, dataset)  # a real `inspect-data` process (no tokenizer: no torch)
    assert "inspecting" in first[0][0].lower() and "40" in first[-1][0]

    started: list = []
    monkeypatch.setattr(engine_cli, "run_json", lambda args, *_rest, **_kwargs: started.append(args) or {})
    again = inspected(ctx, dataset, visitor("another visitor"))
    assert len(again) == 1 and again[0][0] == first[-1][0]  # at once: no "inspecting" step, no process
    engine_cli._caches.clear()  # as after a restart of the server: only the files under the workspace remain
    assert inspected(ctx, dataset)[0][0] == first[-1][0] and started == []

    copy = ctx.uploads / "same-content.json"
    copy.write_bytes(IDENTITY.read_bytes())
    assert inspected(ctx, copy)[0][0] == first[-1][0] and started == []  # keyed by content, not by name
    time.sleep(0.01)
    dataset.write_text(json.dumps([{"instruction": "a", "output": "b"}]))
    inspected(ctx, dataset)
    assert len(started) == 1  # new content: measured again


def test_count_of_a_known_model_starts_no_engine_process(ctx, no_engine):
    shown = list(train_count.count_trainable(ctx, visitor("a"), *form_args(str(DEMO_MODEL), str(IDENTITY), r=16)))
    assert len(shown) == 1 and "trainable" in shown[0] and "%" in shown[0]
    assert no_engine == []


def test_count_without_a_dataset(ctx, no_engine):
    shown = list(train_count.count_trainable(ctx, visitor("a"), *form_args(str(DEMO_MODEL), "", method="prompt")))
    assert "%" in shown[-1]  # the trainable count needs the model and the method only
    assert no_engine == []


def test_offline_hub_id_fails_at_once(ctx, no_engine, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    began = time.monotonic()
    offline = form_args("someone/model-not-in-the-cache", str(IDENTITY))
    shown = list(train_count.count_trainable(ctx, visitor("a"), *offline))
    info = h.show_model(ctx, "someone/model-not-in-the-cache", visitor("a"))
    assert time.monotonic() - began < 2
    assert len(shown) == 1 and "cannot be reached" in shown[0] and "someone/model-not-in-the-cache" in shown[0]
    assert "cannot be reached" in info
    assert no_engine == []


def test_no_network_is_noticed_quickly(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(models, "_hub_answer", None)
    began = time.monotonic()
    assert models.hub_offline()
    assert time.monotonic() - began < models.HUB_CHECK_SECONDS + 1


@pytest.fixture
def unknown_model(ctx: AppContext) -> Path:
    """A model whose shapes engine.model.shapes does not know (GPT-2): its count needs the `plan` process."""
    folder = ctx.workspace / "models" / "gpt2-like"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                                    "n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 100}))
    return folder


PLANNED = {"trainable_params": 1234, "total_params": 99999, "trainable_percent": 1.234}


def test_late_answer_for_an_older_model_is_dropped(ctx, monkeypatch, unknown_model):
    """The visitor picks a slow model, then the demo model while the slow count runs: the demo's figures stay."""
    newer: list = []

    def slow_plan(*_args, **_kwargs):
        newer.extend(train_count.count_trainable(ctx, visitor("v"), *form_args(str(DEMO_MODEL), str(IDENTITY))))
        return PLANNED

    monkeypatch.setattr(engine_cli, "plan", slow_plan)
    older = train_count.count_trainable(ctx, visitor("v"), *form_args(str(unknown_model), str(IDENTITY)))
    assert "counting" in next(older)
    assert list(older) == [gr.skip()]  # the older model's answer came back after the newer request
    assert "%" in newer[-1] and "1.23K" not in newer[-1]
    # The answer is cached all the same; another visitor asking for that model gets it at once.
    cached = list(train_count.count_trainable(ctx, visitor("w"), *form_args(str(unknown_model), str(IDENTITY))))
    assert "1.23K" in cached[0]


def test_superseded_request_starts_no_process(ctx, monkeypatch, unknown_model):
    planned: list = []
    monkeypatch.setattr(engine_cli, "plan", lambda path, **_kwargs: planned.append(path) or PLANNED)
    older = train_count.count_trainable(ctx, visitor("v"), *form_args(str(unknown_model), str(IDENTITY), r=4))
    assert "counting" in next(older)
    list(train_count.count_trainable(ctx, visitor("v"), *form_args(str(unknown_model), str(IDENTITY), r=8)))
    assert list(older) == [gr.skip()] and len(planned) == 1  # only r=8 was planned


def test_other_visitors_requests_do_not_supersede(ctx, monkeypatch, unknown_model):
    monkeypatch.setattr(engine_cli, "plan", lambda *_args, **_kwargs: PLANNED)
    mine = train_count.count_trainable(ctx, visitor("v"), *form_args(str(unknown_model), str(IDENTITY)))
    next(mine)
    list(train_count.count_trainable(ctx, visitor("someone else"), *form_args(str(DEMO_MODEL), str(IDENTITY))))
    assert "1.23K" in list(mine)[-1]


def test_an_older_inspection_answering_after_a_newer_one_shows_nothing(ctx, monkeypatch):
    """A page's inspections answer out of order where a later one is cached: a placeholder text typed (or cleared)
    while an earlier inspection measures answers at once. The earlier answer, coming last, used to put the earlier
    form's texts back in the placeholder fields; it now shows nothing and starts no process once superseded. Another
    visitor's inspection supersedes nothing of this page's."""
    dataset = ctx.uploads / "identity.json"
    dataset.write_bytes(IDENTITY.read_bytes())
    panel = train_tab(ctx).data
    measured = list(train_data.inspect(ctx, panel, "", str(dataset), [], "auto", 256, "truncate"))  # a real process
    started: list = []
    monkeypatch.setattr(engine_cli, "run_json", lambda args, *_rest, **_kwargs: started.append(args) or {})

    def asked(session: str, replace: dict[str, str]):
        return train_data.inspect(ctx, panel, "", str(dataset), [], "auto", 256, "truncate", visitor(session),
                                  replace)

    older = asked("page", {"name": "Zed"})
    assert "wb-data-busy" in next(older)[panel.summary]  # measuring: not cached
    newer = list(asked("page", {}))  # cached: answers at once
    assert len(newer) == 1 and newer[0][panel.summary] == measured[-1][panel.summary]
    list(asked("someone else", {}))
    assert list(older) == [] and started == []
