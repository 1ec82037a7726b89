"""The Chat tab's "Finished run" list against what the chat worker holds (webui.tabs.chat_loaded.run_list):
it never holds a value outside its choices (gradio refuses such a value with a raw "is not in the list of
choices" error on the next press of Load), it follows what is loaded (a run, chosen by the list or by its folder;
nothing for a folder that is no run of the workspace), and a loaded run deleted since is said on the status line.

New-user test: after deleting the loaded run on the Runs tab, Chat's Load by folder failed with
`Value: alpaca-freeze is not in the list of choices`; after loading a run's folder, the list still showed the run
loaded before it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import pytest

from tests import run_folders
from webui.context import AppContext
from webui.tabs import chat, chat_loaded


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    """A workspace with a freeze run and a LoRA run, whose chat worker is replaced by its bookkeeping: a load
    records what it was given, as the worker's reply does (full/freeze runs under full_models)."""
    ctx = AppContext.create(tmp_path / "ws")
    finished(ctx, "alpaca-freeze", "freeze")
    finished(ctx, "pirate-lora", "lora")

    def load(base: str, adapters: dict[str, str], **_options: object) -> dict:
        full = [name for name, location in adapters.items() if (Path(location) / "model").is_dir()]
        ctx.chat.loaded = {"model": base, "device": "cpu", "adapters": list(adapters), "full_models": full,
                           "sources": dict(adapters)}
        return ctx.chat.loaded

    monkeypatch.setattr(ctx.chat, "load", load)
    return ctx


def finished(ctx: AppContext, name: str, method: str) -> Path:
    """A completed run with its weights: model/ for full and freeze, adapter/ for the others."""
    run = run_folders.write_run(ctx, name, method=method, model="org/tiny")
    if method in ("full", "freeze"):
        (run / "model").mkdir()
        (run / "model" / "config.json").write_text("{}")
        (run / "model" / "model.safetensors").write_bytes(b"")
    else:
        (run / "adapter").mkdir()
        (run / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/tiny"}))
        (run / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    return run


def pressed_load(ctx: AppContext, run: str | None, folder: str = "") -> str:
    """The status line once Load has answered."""
    *_, (status, *_rest) = chat.loader("cpu")(ctx, run, folder, None)
    return status


def accepted(listing: dict) -> object:
    """The list's value as gradio hands it to the next handler: its preprocess raises gradio's Error for a value
    outside the choices (the raw toast and the red badges the new user saw)."""
    dropdown = gr.Dropdown(choices=listing["choices"], multiselect=listing.get("multiselect"))
    return dropdown.preprocess(listing.get("value"))


def test_a_deleted_loaded_run_leaves_the_list_and_the_status_says_it_was_deleted(ctx):
    pressed_load(ctx, "alpaca-freeze")
    shutil.rmtree(ctx.runs.runs_dir / "alpaca-freeze")  # deleted on the Runs tab
    listing, status, *_ = chat_loaded.worker_view(ctx, "alpaca-freeze")  # the Chat tab shown again
    assert listing["choices"] == ["pirate-lora"] and accepted(listing) is None
    assert "alpaca-freeze was deleted" in status and "stay loaded until you load another" in status, status
    assert pressed_load(ctx, accepted(listing), "runs/pirate-lora").endswith("adapters: pirate-lora")
    listing, status, *_ = chat_loaded.worker_view(ctx, None)
    assert accepted(listing) == "pirate-lora" and "deleted" not in status


def test_a_chosen_run_deleted_since_is_no_longer_chosen(ctx):
    """Nothing loaded: the visitor's pick stays while it is listed, and goes when its run is deleted."""
    assert accepted(chat_loaded.worker_view(ctx, "pirate-lora")[0]) == "pirate-lora"
    shutil.rmtree(ctx.runs.runs_dir / "pirate-lora")
    assert accepted(chat_loaded.worker_view(ctx, "pirate-lora")[0]) is None


def test_the_list_follows_a_run_loaded_by_its_folder(ctx):
    pressed_load(ctx, "alpaca-freeze")
    assert accepted(chat_loaded.loaded_view(ctx, "alpaca-freeze")[0]) == "alpaca-freeze"
    folder = str(ctx.runs.runs_dir / "pirate-lora" / "adapter")
    assert pressed_load(ctx, "alpaca-freeze", folder).endswith("adapters: pirate-lora")
    assert accepted(chat_loaded.loaded_view(ctx, "alpaca-freeze")[0]) == "pirate-lora"


def test_the_list_is_empty_for_a_folder_that_is_no_run_of_the_workspace(ctx):
    pressed_load(ctx, "pirate-lora")
    folder = ctx.workspace / "adapters" / "mine"
    shutil.copytree(ctx.runs.runs_dir / "pirate-lora" / "adapter", folder)
    assert pressed_load(ctx, "pirate-lora", str(folder)).endswith("adapters: mine")
    assert accepted(chat_loaded.loaded_view(ctx, "pirate-lora")[0]) is None
    chat.unload(ctx)  # nothing loaded: the visitor's pick stays, to be loaded again
    assert accepted(chat_loaded.loaded_view(ctx, "pirate-lora")[0]) == "pirate-lora"


def test_the_other_tabs_lists_drop_a_deleted_run_and_keep_a_listed_pick(ctx):
    """The same guard where another tab lists the runs again as it is shown: Export's run, Evaluate's models and
    test set, and the Train tab's saved configs (a run's config.yaml among them)."""
    from webui.tabs import evaluate, export
    from webui.tabs.train import handlers

    config = str(ctx.runs.runs_dir / "alpaca-freeze" / "config.yaml")
    assert accepted(export.run_list(ctx, "alpaca-freeze")) == "alpaca-freeze"
    assert accepted(handlers.list_configs(ctx, config)) == config
    shutil.rmtree(ctx.runs.runs_dir / "alpaca-freeze")
    assert accepted(export.run_list(ctx, "alpaca-freeze")) is None
    assert accepted(export.run_list(ctx, "pirate-lora")) == "pirate-lora"
    models, test_set = evaluate.choices_kept(ctx, ["base", "alpaca-freeze", "pirate-lora"], "gone.jsonl")
    assert accepted({**models, "multiselect": True}) == ["base", "pirate-lora"] and accepted(test_set) is None
    assert accepted(handlers.list_configs(ctx, config)) is None
