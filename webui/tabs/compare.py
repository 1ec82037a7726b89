"""Compare tab: the same base model, dataset and budget trained once per method (LoRA, QLoRA, DoRA, IA3, prefix,
prompt and P-tuning, full), each an ordinary queued run (webui.jobs.compares), and the table filled as they finish:
trainable parameters, size on disk, peak memory, tokens/s, wall time, final train loss, eval loss and perplexity on
the same held-out rows, exact match / ROUGE-L / BLEU there and how much the general answers changed from the base's
(each method's evaluation job, where "Evaluate" is ticked), whether it merges into the base; the best per column
marked, the loss curves overlaid, each method's answer to the same prompts under the table, the table as CSV and
Markdown (the comparison folder's own table.csv and table.md). The status line is the comparison job's.

The presets table shows each method's learning rate and options (engine/config_compare.py PRESETS) and may be
edited before Start. Stop stops the comparison (and the method that trains, which saves a checkpoint); Start again
resumes (completed methods are not trained again).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.config import METHOD_NAMES
from engine.config_compare import DEFAULT_METHODS
from engine.estimate import methods as estimates
from engine.model.config_json import ModelFileError
from webui.components.columns import ColumnsPanel, build_columns_panel, refused_sentence
from webui.components.plots import colour_state
from webui.components.render import RUN_COLORS, engine_sentence, state_label
from webui.components.wiring import bind
from webui.context import AppContext
from webui.forms.columns import ColumnMaps
from webui.forms.compare_table import (
    PRESET_HEADERS,
    CompareFormError,
    CompareValueError,
    answers_html,
    compare_config,
    curves_frame,
    estimate_html,
    preset_rows,
    table_html,
)
from webui.forms.datasets import dataset_choices, listed_as
from webui.forms.mapping import starter_config
from webui.forms.models import model_choices, model_config_json
from webui.forms.prestart import StartRefusedError, check_compare_data
from webui.i18n import failure, pairs_label, sentence, t, words
from webui.jobs.commands import engine_cache
from webui.jobs.compares import CompareRunningError
from webui.jobs.paths import PathError
from webui.tabs.file_columns import STAGE, chosen_map, wire_chosen_file
from webui.tabs.train.data import cached_lengths

POLL_S = 1.0
METHOD_COLORS = {method: RUN_COLORS[index % len(RUN_COLORS)][0] for index, method in enumerate(METHOD_NAMES)}


@dataclass
class CompareTab:
    name: gr.Textbox
    model: gr.Dropdown  # the Train tab's list (bundled, recent, local models); a hub id or a path may be typed
    dataset: gr.Dropdown
    columns: ColumnsPanel  # the dataset file's column map (its `maps`: {dataset: {standard: column}})
    methods: gr.CheckboxGroup
    steps: gr.Number
    batch_size: gr.Number
    cutoff_len: gr.Number
    val_size: gr.Number
    evaluate: gr.Checkbox
    presets: gr.Dataframe
    estimate: gr.HTML  # each method's memory estimate before Start, with its verdict
    start: gr.Button
    stop: gr.Button
    status: gr.Markdown
    table: gr.HTML
    answers: gr.HTML  # each method's answer to the same prompts
    plot: gr.LinePlot
    csv: gr.DownloadButton
    md: gr.DownloadButton
    followed: gr.State
    timer: gr.Timer
    colors: gr.State  # the plot's colour map (webui/components/plots.py): one colour per method shown


    def inputs(self) -> list[Any]:
        return [self.name, self.model, self.dataset, self.methods, self.presets, self.steps, self.batch_size,
                self.cutoff_len, self.val_size, self.evaluate, self.columns.maps]

    def view_outputs(self) -> list[Any]:
        return [self.status, self.table, self.answers, self.plot, self.csv, self.md, self.followed, self.timer,
                self.colors]


def view(ctx: AppContext, name: str | None, say: Any) -> tuple[Any, ...]:
    """What the tab shows for one comparison: its status line, table, curves, downloads, and the timer (ticking
    while a method is queued or training)."""
    hidden = gr.update(visible=False)
    if not name:
        return "", "", "", None, hidden, hidden, None, gr.Timer(active=False), {}
    try:
        compare = ctx.compares.compare(name)
        table = ctx.compares.table(compare)
    except (OSError, ValueError, PathError) as error:  # the folder removed or damaged since: said, not raised
        status = f"<span class='wb-error'>{say('compare.msg.unreadable', name=name, error=error)}</span>"
        return status, "", "", None, hidden, hidden, None, gr.Timer(active=False), {}
    job = compare.read_status()
    running = ctx.compares.running(compare)
    key = "compare.msg.running" if running else "compare.msg.done"
    status = say(key, name=name, done=table["completed"], total=table["methods"])
    if running:
        status += " " + now_line(str(job.get("state", "")), job.get("note") or "", say)
    elif job.get("error"):
        status += f" <span class='wb-error'>{html.escape(engine_sentence(job['error'], say))}</span>"
    frame = curves_frame(table)
    colors = {method: METHOD_COLORS[method] for method in frame["series"].unique()}
    return (status, table_html(table, say), answers_html(table, say("compare.answers")), frame,
            gr.update(value=str(compare.table_csv), visible=True),
            gr.update(value=str(compare.table_md), visible=True), name, gr.Timer(active=running), colors)


def now_line(state: str, method: str, say: Any) -> str:
    """What the comparison does now: its state and the method it trains or evaluates, or the state alone before a
    method has begun ("Now: starting.", never "Now: starting .")."""
    if method:
        return say("compare.msg.now", state=state_label(state, say), method=method)
    return say("compare.msg.now_state", state=state_label(state, say))


def model_json(ctx: AppContext, model: str) -> dict[str, Any] | None:
    """The base model's config.json through the page's path boundary (PathError, ModelFileError), or None."""
    return model_config_json(model, ctx.local_model_dir(model)) if model else None


def gib(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB"


def estimate(ctx: AppContext, _name: str, model: str | None, dataset: str | None, methods: list[str] | None,
             presets: Any, steps: float | None, batch_size: float | None, cutoff_len: float | None,
             val_size: float | None, evaluate: bool = True, maps: ColumnMaps | None = None,
             request: gr.Request | None = None) -> str:
    """The form's methods' memory estimates before Start, from config.json (no torch) and the dataset's token lengths
    where the Train tab's inspection has measured them; a number out of its range in the sentence Start refuses
    it with; "" where the form makes no comparison yet for another reason (Start says why) or config.json is not at
    hand. The comparison job measures the lengths itself when it starts."""
    from engine.config import ConfigError

    model_name = (model or "").strip()  # the list's entry, or what was typed (a hub id, a path)
    try:
        config = compare_config(model_name, dataset or "", list(methods or []), presets, int(steps or 0),
                                int(batch_size or 0), int(cutoff_len or 0), float(val_size or 0), bool(evaluate),
                                chosen_map(maps, dataset or ""))
        found = model_json(ctx, model_name)
    except CompareValueError as error:  # a number out of its range: said while it is typed, as Start will
        return f"<p class='wb-error'>{html.escape(sentence(request, error))}</p>"
    except (CompareFormError, ConfigError, PathError, ModelFileError):
        return ""  # Start refuses with the sentence
    if found is None:
        return ""
    lengths = cached_lengths(ctx, model_name, dataset or "", config.data.format, config.train.cutoff_len,
                             config.data.overlength, config.data.replace)  # where the Train tab's inspection measured
    return estimate_html(estimates.method_estimates(config, found, *estimates.machine(), lengths=lengths),
                         words(request), gib)


def start(ctx: AppContext, name: str, model: str | None, dataset: str | None, methods: list[str] | None, presets: Any,
          steps: float | None, batch_size: float | None, cutoff_len: float | None, val_size: float | None,
          evaluate: bool = True, maps: ColumnMaps | None = None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Start pressed: queue every method not done yet (its dataset read with the Columns group's picks) and follow
    the comparison."""
    from engine.config import ConfigError

    say = words(request)
    model_name = (model or "").strip()  # the list's entry, or what was typed (a hub id, a path)
    try:
        config = compare_config(model_name, dataset or "", list(methods or []), presets, int(steps or 0),
                                int(batch_size or 0), int(cutoff_len or 0), float(val_size or 0), bool(evaluate),
                                chosen_map(maps, dataset or ""))
        check_compare_data(config, engine_cache(ctx.workspace))  # a pairs file: refused now, not failed per method
        compare = ctx.compares.start((name or "").strip() or "compare", config, model_json(ctx, model_name))
    except StartRefusedError as refused:  # a file matching no format: its columns are picked under Columns
        raise failure(request, refused_sentence(refused, request)) from None
    except (CompareFormError, CompareRunningError, ConfigError, PathError, ModelFileError) as error:
        raise failure(request, sentence(request, error)) from None  # keyed: in the visitor's language
    return view(ctx, compare.name, say)


def stop(ctx: AppContext, name: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    say = words(request)
    try:
        stopped = bool(name) and ctx.compares.stop(ctx.compares.compare(name))
    except (OSError, ValueError, PathError):
        stopped = False
    if not stopped:
        raise failure(request, say("compare.msg.not_running"))
    return view(ctx, name, say)


def follow(ctx: AppContext, name: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    return view(ctx, name, words(request))


def show_latest(ctx: AppContext, request: gr.Request | None = None) -> tuple[Any, ...]:
    latest = ctx.compares.latest()
    return view(ctx, latest.name if latest else None, words(request))


def opened(ctx: AppContext, request: gr.Request | None = None) -> tuple[Any, ...]:
    """The page opened (or reloaded): the dataset list as the workspace holds it, and the form of the newest
    comparison, the one the tab shows, filled in again (tab.inputs(): name, model, dataset, methods, presets, steps,
    batch size, cutoff, held-out share, evaluate, column map), so Start goes on with it; the page's defaults where
    there is none, or where its config cannot be read (a command-line comparison by epochs keeps the steps box)."""
    listing, keep = datasets(ctx, None, request), gr.update()
    latest = ctx.compares.latest()
    try:
        config = latest.read_config() if latest is not None else None
    except (OSError, ValueError):  # a damaged config.yaml: the tab's view says what it can of that comparison
        config = None
    if latest is None or config is None:
        return keep, keep, listing, *(keep,) * 8
    data = config.data
    listed = [path for _, path in listing["choices"]]
    path = (listed_as(data.path, listed) or data.path) if isinstance(data.path, str) else None
    chosen = path if path in listed else listing["value"]
    maps = {path: dict(data.columns)} if path and data.columns else {}
    return (latest.name, config.model.name_or_path, gr.update(choices=listing["choices"], value=chosen),
            [method for method in config.methods if method in METHOD_NAMES], preset_rows(config.presets),
            config.train.max_steps or keep, config.train.batch_size, config.train.cutoff_len, data.val_size,
            config.evaluate, maps)


def datasets(ctx: AppContext, chosen: str | None = None, request: gr.Request | None = None) -> Any:
    """The dataset list as the workspace holds it now; the visitor's choice stays chosen while it is listed (the
    tab is shown again), else the identity sample."""
    choices = dataset_choices(ctx.uploads, ctx.assets, pairs_label(request))
    listed = [path for _, path in choices]
    default = chosen if chosen in listed else next((path for label, path in choices if "identity_alpaca" in label),
                                                   None)
    return gr.update(choices=choices, value=default)


def build_compare_tab(ctx: AppContext, app: gr.Blocks) -> CompareTab:
    starter = starter_config(ctx.assets)
    with gr.Tab(t("tab.compare"), id="compare") as shown:
        with gr.Row():
            name = gr.Textbox("compare", label=t("compare.name"), info=t("compare.name_help"),
                              elem_id="wb-compare-name")
            model = gr.Dropdown(model_choices(ctx.workspace, ctx.assets), allow_custom_value=True,
                                value=starter.model.name_or_path if starter else None, label=t("compare.model"),
                                info=t("compare.model_help"), elem_id="wb-compare-model", scale=2)
            dataset = gr.Dropdown([], label=t("compare.dataset"), info=t("compare.dataset_help"),
                                  elem_id="wb-compare-data", scale=2)
        columns = build_columns_panel(STAGE, prefix="wb-compare", maps_id="wb-compare-columns-map")
        methods = gr.CheckboxGroup(list(METHOD_NAMES), value=list(DEFAULT_METHODS), label=t("compare.methods"),
                                   info=t("compare.methods_help"), elem_id="wb-compare-methods")
        with gr.Row():
            steps = gr.Number(60, minimum=1, precision=0, label=t("compare.steps"), elem_id="wb-compare-steps")
            batch = gr.Number(4, minimum=1, precision=0, label=t("compare.batch_size"), elem_id="wb-compare-batch")
            cutoff = gr.Number(256, minimum=8, precision=0, label=t("compare.cutoff_len"),
                               elem_id="wb-compare-cutoff")
            val_size = gr.Number(0.2, minimum=0, maximum=0.9, label=t("compare.val_size"),
                                 info=t("compare.val_size_help"), elem_id="wb-compare-val")
        evaluate = gr.Checkbox(True, label=t("compare.evaluate"), info=t("compare.evaluate_help"),
                               elem_id="wb-compare-evaluate")
        presets = gr.Dataframe(preset_rows(), headers=PRESET_HEADERS, interactive=True, label=t("compare.presets"),
                               elem_id="wb-compare-presets", static_columns=[0], wrap=True)
        estimate_view = gr.HTML(elem_id="wb-compare-estimate")
        with gr.Row():
            run = gr.Button(t("compare.start"), variant="primary", elem_id="wb-compare-start")
            stop_btn = gr.Button(t("compare.stop"), variant="stop", elem_id="wb-compare-stop")
        status = gr.Markdown(elem_id="wb-compare-status")
        table = gr.HTML(elem_id="wb-compare-table")
        answers = gr.HTML(elem_id="wb-compare-answers")
        plot = gr.LinePlot(x="step", y="loss", color="series", label=t("compare.curves"),
                           elem_id="wb-compare-plot")
        with gr.Row():
            csv = gr.DownloadButton(t("compare.download_csv"), visible=False, elem_id="wb-compare-csv")
            md = gr.DownloadButton(t("compare.download_md"), visible=False, elem_id="wb-compare-md")
        followed, timer = gr.State(None), gr.Timer(POLL_S, active=False)
        colors = colour_state(plot)
    tab = CompareTab(name=name, model=model, dataset=dataset, columns=columns, methods=methods, steps=steps,
                     batch_size=batch, cutoff_len=cutoff, val_size=val_size, evaluate=evaluate, presets=presets,
                     estimate=estimate_view, start=run, stop=stop_btn, status=status, table=table, answers=answers,
                     plot=plot, csv=csv, md=md, followed=followed, timer=timer, colors=colors)
    app.load(bind(opened, ctx), None, tab.inputs())
    shown.select(bind(datasets, ctx), tab.dataset, tab.dataset)
    # models exported or first used since the page loaded are offered when the tab is shown again, as on Train
    shown.select(lambda: gr.update(choices=model_choices(ctx.workspace, ctx.assets)), None, tab.model,
                 show_progress="hidden")
    app.load(bind(show_latest, ctx), None, tab.view_outputs(), show_progress="hidden")
    wire_chosen_file(ctx, tab.columns, tab.dataset)
    tab.start.click(bind(start, ctx), tab.inputs(), tab.view_outputs())
    gr.on([app.load, shown.select, *(field.change for field in tab.inputs()[1:])], bind(estimate, ctx),
          tab.inputs(), tab.estimate, trigger_mode="always_last", show_progress="hidden")
    tab.stop.click(bind(stop, ctx), tab.followed, tab.view_outputs())
    tab.timer.tick(bind(follow, ctx), tab.followed, tab.view_outputs(), show_progress="hidden")
    return tab
