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
