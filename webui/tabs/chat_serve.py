"""The Chat tab's "Use it from other tools (OpenAI-compatible API)" box: Serve starts `python -m engine serve` for
the loaded run (webui.jobs.serving.ServeManager, one server per workspace), Stop serving ends it, a status line
says where it answers and with which models, and the box shows a Python and a curl example for that port.

What is served follows what the chat holds: a run of the workspace (or nothing loaded) serves the workspace's
finished runs under their run names (`serve --workspace`); anything else (an adapter folder outside the runs)
serves its base model alone (`serve --model`), as the examples say."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from engine.serve.examples import DEFAULT_PORT, usage_text
from webui.components.wiring import bind
from webui.context import AppContext
from webui.i18n import t, words
from webui.jobs.serving import ServeSource, ServeState, ServingError

ENGLISH = words(None)


@dataclass
class ServeBox:
    api: gr.Code  # how to talk to the loaded run over the OpenAI-compatible API
    api_key: gr.Textbox
    serve: gr.Button
    stop: gr.Button
    status: gr.Markdown


def loaded_run(ctx: AppContext) -> str | None:
    """The name of the workspace run whose weights the worker holds, None for none (or an adapter folder)."""
    runs = (ctx.workspace / "runs").resolve()
    for location in ((ctx.chat.loaded or {}).get("sources") or {}).values():
        folder = Path(location).expanduser().resolve()
        folder = folder.parent if folder.name == "adapter" else folder
        if folder.parent == runs:
            return folder.name
    return None


def serve_source(ctx: AppContext) -> ServeSource:
    """What Serve serves: the workspace for a run of it (or nothing loaded), else the loaded base model alone."""
    loaded = ctx.chat.loaded
    if loaded is None or loaded_run(ctx) is not None:
        return ServeSource(workspace=str(ctx.workspace))
    return ServeSource(model=str(loaded.get("model") or ""))


def api_usage(ctx: AppContext) -> str:
    """How to talk to what the worker holds over the OpenAI-compatible API: a run of the workspace by its run name
    (`launch.py serve --workspace`), anything else (an adapter folder: the base alone) with `--model`; on the
    port the page serves on, when it does."""
    state = ctx.serve.state()
    serving = state.state == "serving"
    port = state.port if serving and state.port else DEFAULT_PORT
    loaded = ctx.chat.loaded
    if loaded is None:
        if not (serving and state.models and state.source):
            return "# " + ENGLISH("chat.msg.no_model")
        return usage_text(state.models[0], workspace=state.source.workspace, model_dir=state.source.model,
                          port=port, serving=True)
    run = loaded_run(ctx)
    if run is not None:
        return usage_text(run, workspace=str(ctx.workspace), port=port, serving=serving)
    model = str(loaded.get("model") or "")
    name = Path(model).name if Path(model).exists() else model
    return usage_text(name, model_dir=model, port=port, serving=serving and state.source == serve_source(ctx))


def serve_status(state: ServeState, say: Callable[..., str]) -> str:
    if state.state == "serving":
        return say("chat.serve.serving", url=state.url, models=", ".join(state.models))
    if state.state == "starting":
        return say("chat.serve.starting", port=state.port)
    if state.error:
        return say("chat.serve.died", reason=state.error)
    return say("chat.serve.stopped")


def serve_view(ctx: AppContext, request: gr.Request | None = None) -> str:
    """The status line as the server is now: after a reload the page says whether it serves, and where."""
    return serve_status(ctx.serve.state(), words(request))


def serve(ctx: AppContext, api_key: str, request: gr.Request | None = None) -> Iterator[tuple[str, str]]:
    """Serve's click: 'Starting on port N' at once, then the address and models once the server answers. A server
    that cannot start (or dies loading) is a toast with its sentence, and the status line says it stopped."""
    say = words(request)
    try:
        state = ctx.serve.launch(serve_source(ctx), (api_key or "").strip() or None)
        yield serve_status(state, say), api_usage(ctx)
        state = ctx.serve.wait()
    except ServingError as error:
        gr.Warning(say.sentence(error))
        state = ctx.serve.state()
    yield serve_status(state, say), api_usage(ctx)


def stop(ctx: AppContext, request: gr.Request | None = None) -> tuple[str, str]:
    return serve_status(ctx.serve.stop(), words(request)), api_usage(ctx)


def build_serve_box(ctx: AppContext) -> ServeBox:
    """The accordion's contents (call inside it): the examples, the key, the buttons and the status line."""
    api = gr.Code(api_usage(ctx), language="python", interactive=False, elem_id="wb-chat-api")
    with gr.Row():
        api_key = gr.Textbox(label=t("chat.serve.api_key"), placeholder=t("chat.serve.api_key_help"),
                             type="password", scale=2, elem_id="wb-serve-key")
        serve_btn = gr.Button(t("chat.serve.serve"), variant="primary", scale=0, elem_id="wb-serve")
        stop_btn = gr.Button(t("chat.serve.stop"), scale=0, elem_id="wb-serve-stop")
    status = gr.Markdown(serve_view(ctx), elem_id="wb-serve-status")
    gr.Markdown(t("chat.serve.memory"))
    return ServeBox(api, api_key, serve_btn, stop_btn, status)


def wire_serve_box(ctx: AppContext, app: gr.Blocks, box: ServeBox, shown: Any) -> None:
    """The status line asked on every page load (and when the tab is shown), as the chat's worker_view is."""
    app.load(bind(serve_view, ctx), None, box.status)
    shown.select(bind(serve_view, ctx), None, box.status)
    box.serve.click(bind(serve, ctx), box.api_key, [box.status, box.api], concurrency_limit=1,
                    concurrency_id="serve")
    box.stop.click(bind(stop, ctx), None, [box.status, box.api])
