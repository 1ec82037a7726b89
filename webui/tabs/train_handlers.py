"""Event handlers of the Train tab. Each takes plain values and returns plain values or gr.update()s;
errors reach the page as gr.Warning/gr.Error carrying the engine's sentence."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from engine.config import ConfigError, RunConfig, load_config
from engine.rundir import FINAL_STATES
from webui import forms, param_count
from webui.confirm import ask, closed
from webui.context import AppContext
from webui.datasets import dataset_choices, example_segments, length_histogram, preview_rows, save_upload
from webui.engine_cli import EngineError, engine_cache, inspect_job, plan_job
from webui.i18n import failure, message, words
from webui.models import hub_offline, human_count, model_config_json, model_folder, model_info, remember_model
from webui.paths import PathError, safe_name
from webui.render import log_text, loss_colors, loss_frame, progress_html, state_label
from webui.runs import RunError, tail_lines
from webui.widgets import bits_radio_choices

NEW_RUN = "NEW_RUN"
FITS_COLOUR, OVER_COLOUR = "#4c78a8", "#e45756"  # the token-length histogram's two bar colours


@dataclass
class Form:
    """The Train form's values, in the order of TrainTab.form_inputs()."""

    model: str
    dataset: str | None
    data_format: str
    method: str
    values: dict[str, Any]

    @classmethod
    def parse(cls, args: tuple[Any, ...]) -> Form:
        model, dataset, data_format, method, *rest = args
        return cls(model or "", dataset, data_format or "auto", method or "lora", dict(zip(forms.FIELD_KEYS, rest)))

    def config(self, ctx: AppContext, output_dir: Path) -> RunConfig:
        data_path = str(ctx.readable(self.dataset)) if self.dataset else ""
        return forms.to_config(self.values, model=self.model, data_path=data_path, data_format=self.data_format,
                               method=self.method, output_dir=str(output_dir))


def plot_titles(request: gr.Request) -> Any:
    """Axis and legend titles of a loss plot in the visitor's language (the data columns stay step/loss/series)."""
    say = words(request)
    return gr.update(x_title=say("plot.step"), y_title=say("plot.loss"), color_title=say("plot.series"))


def show_model(ctx: AppContext, name: str, request: gr.Request) -> str:
    if not (name or "").strip():
        return ""
    try:
        local = ctx.local_model_dir(name)
    except PathError as error:
        return f"<span class='wb-error'>{error}</span>"
    info = model_info(name.strip(), local)
    info.offline = info.architecture is None and hub_offline()
    return info.markdown(words(request))


def upload_dataset(ctx: AppContext, temp_path: str | None, request: gr.Request | None = None) -> Any:
    if not temp_path:
        return gr.update()
    try:
        saved = save_upload(temp_path, ctx.uploads)
    except PathError as error:
        raise failure(request, str(error)) from None
    return gr.update(choices=dataset_choices(ctx.uploads, ctx.assets), value=str(saved))


def list_datasets(ctx: AppContext) -> Any:
    """The dataset dropdown's choices as the workspace holds them now (the chosen file stays chosen)."""
    return gr.update(choices=dataset_choices(ctx.uploads, ctx.assets))


def inspect(ctx: AppContext, model: str, dataset: str | None, data_format: str, cutoff_len: float,
            overlength: str, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
    """Summary, preview table, rendered example, length histogram, over-cutoff line (or the one error).

    An answer already measured (by any visitor, before any restart) shows at once; otherwise the page says
    "inspecting" while the `inspect-data` engine process runs."""
    hidden = (gr.update(visible=False),) * 4
    if not dataset:
        yield ("",) + hidden
        return
    try:
        path = ctx.readable(dataset)
        local = ctx.local_model_dir(model) if model else None
        tokenizer = model_folder(model, local) if model else None  # local, or the hub cache's copy: no download
        job = inspect_job(path, data_format=data_format, model=str(tokenizer) if tokenizer else None,
                          cutoff_len=int(cutoff_len or 0), overlength=overlength)
        cache = engine_cache(ctx.workspace)
        report = cache.cached(job)
        if report is None:
            yield (f"<span id='wb-data-busy'>{message(request, 'msg.inspecting')}</span>",) + hidden
            report = cache.answer(job)
    except (EngineError, PathError, OSError) as error:
        yield (f"<div class='wb-error' id='wb-data-error'>{error}</div>",) + hidden
        return
    yield inspection_view(report, cutoff_len, request)


def inspection_view(report: dict[str, Any], cutoff_len: float, request: gr.Request | None) -> tuple[Any, ...]:
    """The outputs of `inspect` for one inspect-data report."""
    headers, rows = preview_rows(report)
    summary = message(request, "msg.data_summary", format=report.get("format"), rows=report.get("rows"))
    lengths = report.get("lengths") or []
    over = report.get("over_cutoff")
    over_text = ""
    if over is not None:
        key = "msg.over_cutoff_drop" if report.get("overlength") == "drop" else "msg.over_cutoff_truncate"
        over_text = message(request, key, n=over, cutoff=int(cutoff_len or 0))
    return (
        summary,
        gr.update(value={"headers": headers, "data": rows}, visible=True),
        example_view(report, request),
        length_chart(lengths, int(cutoff_len or 0), request),
        gr.update(value=over_text, visible=bool(over_text)),
    )


def example_view(report: dict[str, Any], request: gr.Request | None) -> Any:
    """The rendered example, its trained spans labelled (and coloured) in the visitor's language."""
    trained = message(request, "msg.trained")
    segments = [(text, trained if label == "trained" else label) for text, label in example_segments(report)]
    return gr.update(value=segments, color_map={trained: "green"}, visible=bool(report.get("example")))


def length_chart(lengths: list[int], cutoff_len: int, request: gr.Request | None) -> Any:
    """The token-length histogram: every row in a bin, bins in numeric order, coloured by fits/over cutoff.

    Sort, colours and titles go with every update: gradio redraws the chart's axes and colour scale only
    when one of its options changes, and a new cutoff changes the legend title."""
    say = words(request)
    fits, over = say("plot.fits"), say("plot.over_cutoff")
    table = pd.DataFrame(length_histogram(lengths, cutoff_len, fits=fits, over=over), columns=["tokens", "rows", "fits"])
    return gr.update(value=table, visible=bool(lengths), sort=list(dict.fromkeys(table["tokens"])),
                     color_map={fits: FITS_COLOUR, over: OVER_COLOUR}, x_title=say("plot.tokens"),
                     y_title=say("plot.rows"), color_title=say("plot.cutoff", cutoff=cutoff_len))


def method_visibility(method: str, bits: Any) -> list[Any]:
    """Show the chosen method's options; the bits radio offers what the method can run with and shows what it
    will load (qlora: 4-bit unless 8; lora and dora keep their choice, 16-bit by default)."""
    shown = forms.visible_fields(method)
    updates = {key: gr.update(visible=visible) for key, visible in shown.items()}
    updates["method.bits"] = gr.update(visible=shown["method.bits"], choices=bits_radio_choices(method),
                                       value=forms.bits_for(method, bits))
    return [updates[f.key] for f in forms.METHOD_FIELDS]


def preview(ctx: AppContext, config_name: str, *args: Any) -> tuple[str, str]:
    """The YAML the run will use and a command that runs exactly it when pasted: the YAML is written to the file
    the command names, and output_dir is WORKSPACE/runs/CONFIG_NAME (as "Save form to YAML" writes it)."""
    form = Form.parse(args)
    try:
        name = safe_name((config_name or "").strip() or "my-run")
        config = form.config(ctx, ctx.runs.runs_dir / name)
    except (ConfigError, PathError) as error:
        issues = getattr(error, "issues", [str(error)])
        return "# " + "\n# ".join(issues), ""
    text = config.to_yaml()
    return text, forms.command_line(forms.preview_file(ctx.configs, name, text))


class LatestRequests:
    """The newest request of each visitor (gradio session) for one kind of answer, so that an answer coming
    back after the visitor asked for something newer is dropped instead of shown over the newer one."""

    def __init__(self, limit: int = 1000):
        self._latest: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def claim(self, session: str | None, key: str) -> Callable[[], bool]:
        """Mark `key` as the session's newest request; returns "is it still the newest?"."""
        session = session or ""
        with self._lock:
            self._latest[session] = key
            self._latest.move_to_end(session)
            while len(self._latest) > self._limit:
                self._latest.popitem(last=False)
        return lambda: self._latest.get(session) == key


TRAINABLE_REQUESTS = LatestRequests()


def trainable_text(request: gr.Request | None, result: dict[str, Any]) -> str:
    return message(request, "msg.trainable", trainable=human_count(result["trainable_params"]),
                   total=human_count(result["total_params"]), percent=f"{result['trainable_percent']:.3f}")


def count_trainable(ctx: AppContext, request: gr.Request | None, *args: Any) -> Iterator[Any]:
    """The trainable-parameter line of the form's model and method. Counted from config.json where the shapes
    are known (webui.param_count: no process, no torch); else "counting" at once and the cached `plan` engine
    process. A hub id that is neither cached nor reachable fails at once. Only the newest request of the
    visitor is shown: a slow answer for an older model or option never overwrites a newer one."""
    form = Form.parse(args)
    name = form.model.strip()
    key = json.dumps([name, form.method, [form.values.get(k) for k in forms.METHOD_OPTIONS.get(form.method, ())]],
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
    config_json = model_config_json(name, local)
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
        except EngineError as error:
            yield f"<span class='wb-error'>{error}</span>" if newest() else gr.skip()
            return
    yield trainable_text(request, result) if result is not None and newest() else gr.skip()


def save_config(ctx: AppContext, config_name: str, *args: Any, request: gr.Request | None = None) -> Any:
    name = safe_name((config_name or "").strip() or "my-run")
    form = Form.parse(args)
    try:
        config = form.config(ctx, ctx.runs.runs_dir / name)
    except (ConfigError, PathError) as error:
        raise failure(request, " ".join(getattr(error, "issues", [str(error)]))) from None
    path = ctx.configs / f"{name}.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    gr.Info(message(request, "msg.saved_config", path=path), title=message(request, "msg.info_title"))
    return gr.update(choices=config_choices(ctx), value=str(path))


def save_config_clicked(ctx: AppContext, request: gr.Request, config_name: str, *args: Any) -> Any:
    """save_config for the button: gradio passes `request` only to a parameter before *args."""
    return save_config(ctx, config_name, *args, request=request)


def config_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in sorted(ctx.configs.glob("*.yaml"))]


def load_saved_config(ctx: AppContext, path: str | None, request: gr.Request | None = None) -> list[Any]:
    """Fill the form from a saved YAML: model, dataset, format, method, then every field."""
    if not path:
        raise failure(request, message(request, "msg.choose_config"))
    try:
        config = load_config(ctx.writable(path))
        data = ctx.readable(config.data.path)
    except (ConfigError, PathError) as error:
        raise failure(request, " ".join(getattr(error, "issues", [str(error)]))) from None
    choices = dataset_choices(ctx.uploads, ctx.assets)
    if str(data) not in [c[1] for c in choices]:
        choices.append((data.name, str(data)))
    values = forms.from_config(config)
    # the bits radio gets the loaded method's choices with its value, so the two never disagree
    values["method.bits"] = gr.update(value=values["method.bits"], choices=bits_radio_choices(config.method.name))
    return [config.model.name_or_path, gr.update(choices=choices, value=str(data)), config.data.format,
            config.method.name] + [values[key] for key in forms.FIELD_KEYS]


def start(ctx: AppContext, request: gr.Request, run_name: str, *args: Any) -> tuple[str, str]:
    form = Form.parse(args)
    try:
        name = safe_name(run_name.strip()) if (run_name or "").strip() else None
        config = form.config(ctx, ctx.runs.runs_dir / (name or NEW_RUN))
        name, queued = ctx.runs.submit(config, name)
    except (ConfigError, PathError, RunError) as error:
        raise failure(request, " ".join(getattr(error, "issues", [str(error)]))) from None
    remember_model(ctx.workspace, form.model)
    if queued:
        gr.Info(message(request, "msg.queued", name=name, active=ctx.runs.active() or "?"),
                title=message(request, "msg.info_title"))
    return name, ""


def stop(ctx: AppContext, name: str | None, request: gr.Request | None = None) -> None:
    try:
        ctx.runs.stop(name or "")
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None


def ask_cancel(ctx: AppContext, name: str | None, request: gr.Request) -> tuple[Any, ...]:
    """Cancel pressed: name the run that would be killed and deleted, and ask (a finished run is not cancelled)."""
    say = words(request)
    if not name:
        raise failure(request, say("train.msg.nothing_to_cancel"))
    try:
        state = ctx.runs.info(name).state
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    if state in FINAL_STATES:
        raise failure(request, say("train.msg.cancel_finished", name=name, state=state_label(state, say)))
    return ask(say("train.confirm_cancel", name=f"`{name}`"), name)


def cancel(ctx: AppContext, name: str | None, request: gr.Request) -> tuple[Any, ...]:
    """Yes pressed: kill the run the question named and delete its folder; the live view goes blank."""
    try:
        ctx.runs.cancel(name or "")
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    gr.Info(message(request, "train.msg.cancelled", name=name), title=message(request, "msg.info_title"))
    return *closed(), None, progress_html(None, words(request)), loss_frame({}), "", {}


def poll(ctx: AppContext, name: str | None, seen: int, request: gr.Request) -> tuple[Any, ...]:
    """Timer tick: new events of the followed run (or the run that trains now, after a reload).

    Returns the run, progress, loss data, log, the events seen and the loss plot's colours (webui.plots)."""
    if not name:
        name = ctx.runs.active()
        if not name:
            return (gr.skip(),) * 6
        seen = -1
    try:
        snap = ctx.runs.monitor(name).refresh()
    except (RunError, PathError):  # deleted by another visitor
        return None, progress_html(None, words(request)), loss_frame({}), "", -1, {}
    if snap.version == seen:
        return (gr.skip(),) * 6
    tail = tail_lines(ctx.runs.run_dir(name).stdout_log) if snap.state == "failed" else ""
    snaps = {name: snap}
    return (name, progress_html(snap, words(request)), loss_frame(snaps), log_text(snap, tail), snap.version,
            loss_colors(snaps))
