"""bind(): give a handler its AppContext while keeping a signature gradio can read (gr.Request
injection and generator streaming both depend on it; functools.partial hides both). newest(): a queued handler
coalesced to its newest run beside others on the same triggers. quiet_loads(): the page opening's events."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr


def bind(fn: Callable[..., Any], ctx: Any) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            yield from fn(ctx, *args, **kwargs)

    else:

        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            return fn(ctx, *args, **kwargs)

    signature = inspect.signature(fn)
    handler.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    return handler


def newest(triggers: list[Any], **event: Any) -> Any:
    """Listens to `triggers` with a queued handler (gradio's event keywords in `event`) whose runs are coalesced to
    the newest: a trigger while it runs starts one run after it, which reads the page as it is then. For a handler
    that shares a trigger with another queued handler of that kind.

    Gradio 6's page sends such a deferred run again as the trigger's whole event (Blocks.dispatch: on completion,
    `this.queue.has(id) && this.dispatch(e)`), which starts every listener of that trigger again; two queued
    `always_last` listeners of one trigger so restart each other without end (a model typed into the Train tab: the
    dataset inspection and the config preview, every 0.8 s). A `.then` is sent again alone, so the handler listens
    through a relay that runs in the browser. tests/unit/test_page_events.py finds any trigger with two."""
    relay = gr.on(triggers, None, None, None, js="() => []", show_progress="hidden", queue=False)
    return relay.then(trigger_mode="always_last", **event)


def quiet_loads(app: Any) -> None:
    """Every event the page's opening fires (a `load` trigger, alone or with others): no progress animation over its
    outputs, and answered by one direct request instead of through the queue (joining it, then a stream of messages
    for each event), except a generator, which streams through the queue. Each handler is quick: the page's heavy
    work runs in engine processes. Measured in the README's "Opening the page"."""
    for fn in app.fns.values():
        if not any(event == "load" for _, event in fn.targets):
            continue
        fn.show_progress = "hidden"
        handler = inspect.unwrap(fn.fn) if fn.fn is not None else None
        if handler is not None and not (inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler)):
            fn.queue = False
