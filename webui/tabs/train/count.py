"""The Train tab's trainable-parameter count: from config.json where the model's shapes are known (no process),
else from the cached `plan` engine process; only each visitor's newest request is shown."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from engine.config import ConfigError
from engine.model import shapes as param_count
from engine.model.config_json import ModelFileError
from webui.components.latest import LatestRequests
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms.fields import METHOD_OPTIONS
from webui.forms.models import hub_offline, human_count, model_config_json
from webui.i18n import message, sentence
from webui.jobs.commands import EngineCommandError, engine_cache, plan_job
from webui.jobs.paths import PathError
from webui.tabs.train.handlers import NEW_RUN, Form

TRAINABLE_REQUESTS = LatestRequests()


def trainable_text(request: gr.Request | None, result: dict[str, Any]) -> str:
    return message(request, "msg.trainable", trainable=human_count(result["trainable_params"]),
                   total=human_count(result["total_params"]), percent=f"{result['trainable_percent']:.3f}")


def count_trainable(ctx: AppContext, request: gr.Request | None, *args: Any) -> Iterator[Any]:
    """The trainable-parameter line of the form's model and method. Counted from config.json where the shapes
    are known (engine.model.shapes: no process, no torch); else "counting" at once and the cached `plan` engine
    process. A hub id that is neither cached nor reachable fails at once. Only the newest request of the
    visitor is shown: a slow answer for an older model or option never overwrites a newer one."""
    form = Form.parse(args)
    name = form.model.strip()
    key = json.dumps([name, form.method, [form.values[option] for option in METHOD_OPTIONS.get(form.method, ())]],
                     default=str)
    newest = TRAINABLE_REQUESTS.claim(getattr(request, "session_hash", None), key)
    if not name:
        yield ""
        return
    try:
        local = ctx.local_model_dir(name)
        method = forms.method_config(form.values, form.method)
    except PathError as error:
        yield f"<span class='wb-error'>{error}</span>"
        return
    except ConfigError:
        yield ""  # the config preview lists what is wrong
        return
    try:
        config_json = model_config_json(name, local)
    except ModelFileError as error:  # a damaged config.json: the model summary says the same sentence
        yield f"<span class='wb-error'>{html.escape(str(error))}</span>"
        return
    if config_json is not None:
        counted = param_count.count(config_json, method)
        if counted is not None:
            yield trainable_text(request, counted)
            return
    elif local is None and hub_offline():
        yield f"<span class='wb-error'>{message(request, 'msg.model_offline', name=name)}</span>"
        return
    yield from planned_count(ctx, request, form, newest)


def planned_count(ctx: AppContext, request: gr.Request | None, form: Form, newest: Callable[[], bool]) -> Iterator[Any]:
    """The count from the `plan` engine process (cached): for models whose shapes param_count does not know."""
    try:
        config = form.config(ctx, ctx.runs.runs_dir / NEW_RUN)
    except (ConfigError, PathError):
        yield ""  # the config preview already lists what is missing
        return
    job = plan_job(config)
    cache = engine_cache(ctx.workspace)
    result = cache.cached(job)
    if result is None:
        yield message(request, "msg.counting")
        try:
            result = cache.answer(job, wanted=newest)
        except EngineCommandError as error:
            yield f"<span class='wb-error'>{html.escape(sentence(request, error))}</span>" if newest() else gr.skip()
            return
    yield trainable_text(request, result) if result is not None and newest() else gr.skip()

