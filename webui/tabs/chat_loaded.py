"""What the Chat tab shows of what the chat worker holds: the status line (what is loaded, and a run or folder it was
loaded from that is deleted since), the "Finished run" list following the loaded run, the base column's title, and
what a conversation records of the model it was held with (held_key)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from engine.jobs.rundir import ADAPTER, RunDir
from webui.components.widgets import listing
from webui.context import AppContext
from webui.i18n import words
from webui.tabs.chat_serve import api_usage, loaded_run


def finished_runs(ctx: AppContext) -> list[str]:
    return [i.name for i in ctx.runs.list() if i.state in ("completed", "stopped") and
            RunDir(i.path).weights_dir() is not None]


def loaded_status(ctx: AppContext, say: Callable[..., str]) -> str:
    """The status line for what the worker holds now, and which of the runs or folders it was loaded from are
    deleted since (what the worker holds stays loaded until another load or Unload)."""
    loaded = ctx.chat.loaded
    if loaded is None:
        return say("chat.msg.no_model")
    model = Path(str(loaded.get("model") or "?")).name
    if loaded.get("start"):
        model = f"{model} + {source_name(loaded['start'])}"
    sources = loaded.get("sources") or {}
    line = say("chat.msg.loaded", model=model, device=loaded.get("device", "?"), what=loaded_weights(loaded, say))
    return " ".join([line, *(say("chat.msg.source_deleted", name=source_name(location))
                             for location in sources.values() if not Path(location).exists())])


def loaded_weights(loaded: dict[str, Any], say: Callable[..., str]) -> str:
    """What is loaded over the base, worded by kind: a full or freeze run's own weights (the worker's full_models)
    or adapters, each named by its run or folder, not by the worker's "tuned"."""
    sources, full = loaded.get("sources") or {}, set(loaded.get("full_models") or [])
    names = loaded.get("adapters") or []

    def named(kind: list[str]) -> str:
        return ", ".join(source_name(sources.get(name, name)) for name in kind)

    adapters, full_weights = [n for n in names if n not in full], [n for n in names if n in full]
    parts = [say("chat.msg.loaded_adapters", names=named(adapters))] if adapters else []
    parts += [say("chat.msg.loaded_full", names=named(full_weights))] if full_weights else []
    return " · ".join(parts) or say("chat.msg.loaded_adapters", names=say("chat.msg.no_adapters"))


def loaded_names(ctx: AppContext) -> str:
    """The loaded runs or adapter folders as the page names them, else the base model's name."""
    loaded = ctx.chat.loaded or {}
    names = [source_name(location) for location in (loaded.get("sources") or {}).values()]
    return ", ".join(names) or Path(str(loaded.get("model") or "?")).name


def status_view(ctx: AppContext, request: gr.Request | None = None) -> str:
    return loaded_status(ctx, words(request))


def source_name(location: str) -> str:
    """A loaded source (or the run a model starts from) as the page names it: its folder, or the run of a run's
    adapter/ folder."""
    folder = Path(location)
    return folder.parent.name if folder.name == ADAPTER and folder.parent.name else folder.name


def held_key(ctx: AppContext) -> str | None:
    """What the worker holds, as a conversation records it: the base, the runs or folders loaded on it and the run
    it starts from (not the device); None where nothing is loaded."""
    loaded = ctx.chat.loaded
    if loaded is None:
        return None
    return json.dumps([loaded.get("model"), loaded.get("sources") or {}, loaded.get("start")], sort_keys=True)


def base_label(ctx: AppContext, say: Callable[..., str]) -> Any:
    """The second column's title: "Base model", or, for a run started from another run (an SFT run before DPO),
    the starting point it answers from: the base with that run merged in, which is what the run was trained from."""
    start = (ctx.chat.loaded or {}).get("start")
    return gr.update(label=say("chat.base_start", start=source_name(start)) if start else say("chat.base"))


def run_list(ctx: AppContext, chosen: str | None) -> Any:
    """The "Finished run" list as the workspace holds it now, showing what the worker holds: the loaded run, or none
    for a folder that is no run of the workspace (or a run deleted since); with nothing loaded, the visitor's pick
    (`chosen`) while it is listed. Never a value outside the choices (widgets.listing)."""
    shown = loaded_run(ctx) if ctx.chat.loaded is not None else chosen
    return listing(finished_runs(ctx), shown)


def worker_view(ctx: AppContext, chosen: str | None = None,
                request: gr.Request | None = None) -> tuple[Any, str, str, Any]:
    """The run list, status line, API box and the base column's title as the chat worker holds them now: after a
    reload (or in a second tab) the page says what Send answers with, and the list shows the loaded run chosen."""
    say = words(request)
    return run_list(ctx, chosen), loaded_status(ctx, say), api_usage(ctx), base_label(ctx, say)


def loaded_view(ctx: AppContext, chosen: str | None = None,
                request: gr.Request | None = None) -> tuple[Any, str, Any]:
    """After a load or an unload: the run list (the run whose folder was loaded, by the list or by typing it), the
    API box and the base column's title for what is loaded now."""
    return run_list(ctx, chosen), api_usage(ctx), base_label(ctx, words(request))
