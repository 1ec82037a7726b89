"""Chat tab: load a finished run (or an adapter folder) into the chat worker, stream replies, optionally
side by side with the base model; unload frees the worker's memory. Tools (JSON) offers tools to the model: a
reply that calls one is shown as the call, and the visitor answers with its result (webui/jobs/chat_tools.py).
"Use it from other tools" serves the loaded run over the OpenAI-compatible API (`launch.py serve`, engine/serve/),
with a Python and a curl example (webui/tabs/chat_serve.py). The status line and the "Finished run" list say what
the worker holds (webui/tabs/chat_loaded.py)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from engine.errors import UserError
from engine.jobs.rundir import RunDir
from engine.sampling import SamplingConfig
from webui.components.widgets import field_widget
from webui.components.wiring import bind
from webui.context import AppContext
from webui.forms.sampling import SAMPLING_OPTIONS, to_sampling
from webui.i18n import failure, sentence, t, words
from webui.jobs.chat_client import ChatWorkerError
from webui.jobs.chat_tools import (
    ToolsError,
    is_tool_call,
    offered_tools,
    reply_messages,
    result_message,
    text_message,
)
from webui.jobs.paths import PathError
from webui.tabs.chat_loaded import (
    held_key,
    loaded_names,
    loaded_status,
    loaded_view,
    source_name,
    status_view,
    worker_view,
)
from webui.tabs.chat_rate import RateBox, build_rate_box, wire_rate_box
from webui.tabs.chat_serve import ServeBox, build_serve_box, wire_serve_box

TUNED = "tuned"
ENGLISH = words(None)  # the default language's words, for callers with no visitor (tests, the command line)


@dataclass
class ChatTab:
    run: gr.Dropdown
    adapter_dir: gr.Textbox
    load: gr.Button
    unload: gr.Button
    status: gr.Markdown
    confirm_row: gr.Row
    load_gpu: gr.Button
    load_cpu: gr.Button
    system: gr.Textbox
    sampling: list[gr.components.Component]  # the SamplingConfig widgets, in SAMPLING_OPTIONS' order
    tools: gr.Textbox  # a JSON list of function schemas offered to the model
    side_by_side: gr.Checkbox
    tuned_chat: gr.Chatbot
    base_chat: gr.Chatbot
    message: gr.Textbox
    tool_result: gr.Checkbox  # send the message as a tool's result
    send: gr.Button
    clear: gr.Button
    api: gr.Code  # how to talk to the loaded run over the OpenAI-compatible API
    serving: ServeBox  # its Serve / Stop serving buttons and status line
    rating: RateBox  # mark the better answer: a pair appended to a preference dataset file (webui.tabs.chat_rate)
    tools_note: gr.Markdown  # under the Tools box, once it is left: why it is not a tool list (Send toasts it)
    held: gr.State  # what the worker held when this page's conversation was answered (held_key)


def resolve_source(ctx: AppContext, run: str | None, adapter_dir: str,
                   say: Callable[..., str] = ENGLISH) -> tuple[str, dict[str, str]]:
    """(base model, adapters) for the worker's load request. The base is decided and checked here
    (ctx.boundary.chat_base: the run's config.yaml, or the adapter's adapter_config.json) and given to the worker,
    so it never takes a base from a file on its own. PathError, one sentence, for anything outside.

    A full/freeze run is passed like an adapter too: the worker loads its model beside the base.
    """
    if (adapter_dir or "").strip():
        folder = ctx.readable(adapter_dir.strip())
        if not ((folder / "adapter_config.json").is_file() or RunDir(folder).config.is_file()):
            raise PathError(say("chat.msg.not_adapter", folder=folder))
        return chat_base(ctx, folder), {TUNED: str(folder)}
    if not run:
        raise PathError(say("chat.msg.choose_source"))
    run_dir = ctx.runs.run_dir(run)
    if run_dir.weights_dir() is None:
        raise PathError(say("chat.msg.no_weights", run=run))
    return chat_base(ctx, run_dir.path), {TUNED: str(run_dir.path)}


def chat_base(ctx: AppContext, folder: Path) -> str:
    """The checked base model of a chat source; a damaged config.yaml is a PathError too (one sentence)."""
    try:
        return ctx.boundary.chat_base(folder)
    except PathError:
        raise
    except ValueError as error:  # a damaged config.yaml
        raise PathError(f"{folder} has a damaged config.yaml: {str(error).splitlines()[0]}") from None


def asks_first(ctx: AppContext, mode: str) -> bool:
    """Whether a load in `mode` asks before it loads: training holds the GPU ('ask' only)."""
    return mode == "ask" and bool(ctx.runs.active()) and ctx.gpu_present()


def load(ctx: AppContext, run: str | None, adapter_dir: str, mode: str = "ask",
         request: gr.Request | None = None) -> tuple[str, Any]:
    """mode: 'ask' (asks when training holds the GPU), 'gpu' (load anyway) or 'cpu'.

    Raises PathError or ChatWorkerError, one sentence each, when the source or the load fails."""
    say = words(request)
    if asks_first(ctx, mode):
        return say("chat.msg.gpu_busy", run=ctx.runs.active()), gr.update(visible=True)
    base, adapters = resolve_source(ctx, run, adapter_dir, say)
    ctx.chat.load(base, adapters, cpu_only=(mode == "cpu"))
    return loaded_status(ctx, say), gr.update(visible=False)


def switches_model(ctx: AppContext, adapters: dict[str, str]) -> bool:
    """Whether loading `adapters` (resolve_source's) replaces the model the conversation on screen was held with:
    another run or adapter folder (with it, maybe another base), or a model where none is loaded. Pressing Load
    again on the loaded run keeps the conversation."""
    loaded = ctx.chat.loaded
    return loaded is None or (loaded.get("sources") or {}) != adapters


# Both columns' conversations and the tool-result tick as a newly loaded model starts them. A model switch starts
# a fresh conversation, as LLaMA-Factory's Chat tab does (a loaded model must be unloaded before another is loaded,
# and its Unload empties the chat): the replies on screen were another model's, which the new one would answer as
# if they were its own, and the rating box would pair the old model's answer with the new base's. Unload alone
# keeps it here, to be read, until a model is loaded.
FRESH = ([], [], False)
KEPT = (gr.skip(),) * 3
# The worker is the workspace's one chat model: a load on another page (or in another browser) replaces the model
# this page's conversation was answered by. Send then refuses in a sentence (respond): the new model would answer
# as if the replies on screen were its own.


def loader(mode: str) -> Callable[..., Iterator[tuple[Any, ...]]]:
    """The click handler of one load button (a named parameter, not functools.partial: gradio must see `request`):
    (status line, the ask row, tuned conversation, base conversation, tool-result tick, what the conversation is
    held with).

    It says "Loading" at once, and it runs in the chat's concurrency group: a message sent meanwhile waits in
    the queue behind the load and is answered by the model being loaded. Where the load switches the model, the
    conversations on screen are emptied with that first answer, before a message sent meanwhile reads them. A
    failure leaves the status line saying what is loaded now (a failed load may have replaced the model before) and
    the reason in a toast.
    """

    def handler(ctx: AppContext, run: str | None, adapter_dir: str,
                request: gr.Request) -> Iterator[tuple[Any, ...]]:
        say = words(request)
        source = (adapter_dir or "").strip() or run
        try:
            if asks_first(ctx, mode):
                yield *load(ctx, run, adapter_dir, mode, request), *KEPT, gr.skip()
                return
            base, adapters = resolve_source(ctx, run, adapter_dir, say)
            fresh = FRESH if switches_model(ctx, adapters) else KEPT
            yield say("chat.msg.loading", source=source_name(str(source))), gr.update(visible=False), *fresh, gr.skip()
            ctx.chat.load(base, adapters, cpu_only=(mode == "cpu"))
            yield loaded_status(ctx, say), gr.update(visible=False), *KEPT, held_key(ctx)
        except (PathError, ChatWorkerError) as error:
            warn(sentence(request, error))
            yield loaded_status(ctx, say), gr.update(visible=False), *KEPT, gr.skip()

    return handler


def unload(ctx: AppContext, request: gr.Request | None = None) -> str:
    """Unload the model. The conversation stays on screen to be read (a message sent now is refused in a sentence
    and stays in the box); the next model loaded starts a fresh one (switches_model)."""
    try:
        ctx.chat.unload()
    except ChatWorkerError as error:
        raise failure(request, sentence(request, error)) from None
    return words(request)("chat.msg.unloaded")


def warn(text: str) -> None:
    """A toast that leaves every component as it is (gr.Error would put the outputs in an error state)."""
    gr.Warning(text)


def check_tools_box(text: str, request: gr.Request | None = None) -> Any:
    """When the Tools (JSON) box is left: the note under it says, in one sentence, why it is not a JSON list (or
    goes away). Not a toast: leaving the box for Send would show the same warning twice, once from here and once
    from Send, which refuses to send it."""
    try:
        offered_tools(text, words(request))
    except ToolsError as error:
        return gr.update(value=f"<span class='wb-error'>{html.escape(str(error))}</span>", visible=True)
    return gr.update(value="", visible=False)


def send_message(ctx: AppContext, request: gr.Request, text: str, tuned: list, base: list, side_by_side: bool,
                 system: str, tools_text: str, as_tool_result: bool, held: str | None,
                 *sampling_values: Any) -> Iterator[Any]:
    """The Send handler as gradio calls it: the sampling widgets' values come last, one per SAMPLING_OPTIONS, and
    become one SamplingConfig here; a value the schema refuses is a toast that names it, and nothing is sent."""
    try:
        sampling = to_sampling(sampling_values)
    except UserError as error:
        warn(sentence(request, error))
        yield (gr.skip(),) * 5
        return
    yield from respond(ctx, text, tuned, base, side_by_side, system, sampling, tools_text, as_tool_result, request,
                       held)


def respond(ctx: AppContext, text: str, tuned: list, base: list, side_by_side: bool, system: str,
            sampling: SamplingConfig, tools_text: str = "", as_tool_result: bool = False,
            request: gr.Request | None = None, held: str | None = None) -> Iterator[tuple[Any, ...]]:
    """Stream the fine-tuned reply, then (side by side) the base model's reply to the same history; yields (message
    box, tuned pane, base pane, tool-result tick, what the conversation is held with).

    With tools offered, a reply that calls tools is shown as its calls, and 'send as a tool result' is ticked for
    the answer (as_tool_result: the message is the tool's result). When the reply cannot be made (no model
    loaded, another page has loaded another model since the conversation began, a tool list that is not JSON, the
    worker refuses or stops), a toast says why, and the panes go back to the conversation before this message,
    which stays in the box to send again.
    """
    if not (text or "").strip():
        return
    say = words(request)
    now = held_key(ctx)
    try:
        if ctx.chat.loaded is None:
            raise ChatWorkerError(say("chat.msg.no_model"))
        if (tuned or base) and held is not None and held != now:
            raise ChatWorkerError(say("chat.msg.other_model", loaded=loaded_names(ctx)))
        tools = offered_tools(tools_text, say)
    except UserError as error:
        warn(sentence(request, error))
        yield (gr.skip(),) * 5
        return
    has_adapter = bool((ctx.chat.loaded or {}).get("adapters"))
    turn = [result_message(text, say) if as_tool_result else text_message("user", text),
            text_message("assistant", "")]
    new_tuned = tuned + turn
    new_base = base + turn if side_by_side else base
    columns = [(new_tuned, TUNED if has_adapter else None)] + ([(new_base, None)] if side_by_side else [])
    yield "", new_tuned, new_base, gr.skip(), now  # the box empties once: what is typed while the reply streams stays
    try:
        for history, adapter in columns:
            data: dict[str, Any] = {}
            for reply in ctx.chat.generate(history[:-1], adapter, tools, data, system or None, sampling):
                history[-1] = text_message("assistant", reply)
                yield gr.skip(), new_tuned, new_base, gr.skip(), gr.skip()
            history[-1:] = reply_messages(reply, data, say)
    except UserError as error:
        warn(sentence(request, error))
        yield text, tuned, base, gr.skip(), held
        return
    yield gr.skip(), new_tuned, new_base, is_tool_call(new_tuned[-1]), gr.skip()


def build_sampling() -> list[gr.components.Component]:
    """The sampling widgets, built from the schema as the Train form's options are (`wb-chat-top-p` for top_p)."""
    widgets = []
    with gr.Accordion(t("chat.sampling"), open=False, elem_id="wb-chat-sampling"):
        for start in range(0, len(SAMPLING_OPTIONS), 3):  # three a row: each shows its help under its label
            with gr.Row():
                widgets += [field_widget(field, elem_id="wb-chat-" + field.name.replace("_", "-"))
                            for field in SAMPLING_OPTIONS[start:start + 3]]
    return widgets


def build_chat_tab(ctx: AppContext, app: gr.Blocks) -> ChatTab:
    with gr.Tab(t("tab.chat"), id="chat") as shown:
        with gr.Row():
            run = gr.Dropdown([], label=t("chat.run"), elem_id="wb-chat-run", scale=2)
            adapter_dir = gr.Textbox(label=t("chat.adapter_dir"), placeholder=t("chat.adapter_dir_help"), scale=2,
                                     elem_id="wb-chat-adapter-dir")
            load_btn = gr.Button(t("chat.load"), variant="primary", elem_id="wb-chat-load", scale=0)
            unload_btn = gr.Button(t("chat.unload"), scale=0)
        status = gr.Markdown(elem_id="wb-chat-status")
        with gr.Row(visible=False) as confirm_row:
            load_gpu = gr.Button(t("chat.load_gpu_anyway"), variant="stop")
            load_cpu = gr.Button(t("chat.load_cpu"))
        system = gr.Textbox(label=t("chat.system"), lines=1)
        sampling = build_sampling()
        with gr.Accordion(t("chat.tools"), open=False, elem_id="wb-chat-tools-box"):
            tools = gr.Textbox(show_label=False, lines=4, max_lines=20, placeholder=t("chat.tools_help"),
                               elem_id="wb-chat-tools")
            tools_note = gr.Markdown(visible=False, elem_id="wb-chat-tools-note")
        side_by_side = gr.Checkbox(label=t("chat.side_by_side"), elem_id="wb-side-by-side")
        with gr.Row():
            # no "share" button: it posts to Hugging Face Spaces, which a local workbench is not
            tuned_chat = gr.Chatbot(label=t("chat.tuned"), elem_id="wb-chat-tuned", height=360,
                                    buttons=["copy", "copy_all"])
            base_chat = gr.Chatbot(label=t("chat.base"), visible=False, elem_id="wb-chat-base", height=360,
                                   buttons=["copy", "copy_all"])
        with gr.Row():
            message = gr.Textbox(show_label=False, placeholder=t("chat.placeholder"), scale=4, elem_id="wb-chat-msg")
            tool_result = gr.Checkbox(label=t("chat.as_tool_result"), scale=0, min_width=160,
                                      elem_id="wb-chat-tool-result")
            send = gr.Button(t("chat.send"), variant="primary", scale=0, elem_id="wb-chat-send")
            clear = gr.Button(t("chat.clear"), scale=0)
        rating = build_rate_box()
        held = gr.State(None)
        with gr.Accordion(t("chat.api"), open=False, elem_id="wb-chat-api-box"):
            serving = build_serve_box(ctx)
    tab = ChatTab(run, adapter_dir, load_btn, unload_btn, status, confirm_row, load_gpu, load_cpu, system, sampling,
                  tools, side_by_side, tuned_chat, base_chat, message, tool_result, send, clear, serving.api, serving,
                  rating, tools_note, held)
    # Listed as the page loads and whenever the tab is shown, before the list is opened: choices replaced while
    # the list is open show stale and doubled entries (Gradio 6).
    refresh = (bind(worker_view, ctx), tab.run, [tab.run, tab.status, tab.api, tab.base_chat])
    app.load(*refresh)
    shown.select(*refresh)
    wire_serve_box(ctx, app, serving, shown)
    conversation = [tab.tuned_chat, tab.base_chat, tab.tool_result]  # a model switch starts them afresh (FRESH)
    # a run picked from the list is what Load loads: the folder box, which Load prefers, is emptied (in the browser)
    tab.run.input(None, None, tab.adapter_dir, js="() => ''")
    for button, mode in ((tab.load, "ask"), (tab.load_gpu, "gpu"), (tab.load_cpu, "cpu")):
        # No gr.State here: a component created outside the Tab would land in gr.Tabs as a phantom tab.
        button.click(bind(loader(mode), ctx), [tab.run, tab.adapter_dir],
                     [tab.status, tab.confirm_row, *conversation, tab.held], concurrency_limit=1,
                     concurrency_id="chat").then(
            bind(loaded_view, ctx), tab.run, [tab.run, tab.api, tab.base_chat])
    tab.unload.click(bind(unload, ctx), None, tab.status, concurrency_limit=1, concurrency_id="chat").then(
        bind(loaded_view, ctx), tab.run, [tab.run, tab.api, tab.base_chat])
    tab.side_by_side.change(lambda on: gr.update(visible=on), tab.side_by_side, tab.base_chat)
    inputs = [tab.message, tab.tuned_chat, tab.base_chat, tab.side_by_side, tab.system, tab.tools, tab.tool_result,
              tab.held, *tab.sampling]
    # A press while the previous reply is still finishing is kept and sent once it has ended ("always_last": the
    # inputs are read then, so the new message goes out with that reply in its history); Gradio's default for a
    # click ("once") dropped it, and a person typing quickly saw a dead button.
    # then the status line says what the worker holds now (another page may have loaded another model meanwhile)
    gr.on([tab.send.click, tab.message.submit], bind(send_message, ctx), inputs,
          [tab.message, tab.tuned_chat, tab.base_chat, tab.tool_result, tab.held], concurrency_limit=1,
          concurrency_id="chat", trigger_mode="always_last").then(
        bind(status_view, ctx), None, tab.status, show_progress="hidden")
    tab.tools.blur(check_tools_box, tab.tools, tab.tools_note, show_progress="hidden")
    wire_rate_box(ctx, rating, tab.tuned_chat, tab.base_chat, tab.system)
    tab.clear.click(lambda: FRESH, None, conversation)
    return tab
