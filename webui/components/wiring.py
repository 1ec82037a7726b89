"""bind(): give a handler its AppContext while keeping a signature gradio can read (gr.Request
injection and generator streaming both depend on it; functools.partial hides both)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


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
