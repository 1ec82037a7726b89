"""Evaluate tab: base against finished runs on a test set, as an engine job (webui.jobs.evals), then the metrics
table (one row per model, the best per column marked, a CSV download) and the row-by-row view of the answers
(webui.forms.eval_table).

A test set file whose columns match no format (a `question,answer` CSV) is mapped under its Columns group
(webui/tabs/file_columns.py), as the Train tab's dataset is: the picks are the evaluation's data.columns.

The tab follows one evaluation at a time, as the Export tab follows one export: its timer ticks only while that job
is under way. Opening (or reloading) the page shows the newest evaluation, finished or not, so a reload or a
restart of launch.py finds its progress or results again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config_eval import BASE, EvalConfig
from engine.jobs.rundir import EvalDir
from engine.sampling import MAX_NEW_TOKENS as TOKENS_LIMIT
from engine.sampling import SamplingConfig
from webui.components.columns import ColumnsPanel, build_columns_panel, refused_sentence
from webui.components.render import log_text, state_label
from webui.components.widgets import listing
from webui.components.wiring import bind
from webui.context import AppContext
from webui.forms.columns import ColumnMaps
from webui.forms.datasets import dataset_choices, listed_as
from webui.forms.eval_table import Say, model_names, read_predictions, results_html, row_view, table_csv
from webui.forms.prestart import StartRefusedError, check_test_set
from webui.i18n import failure, pairs_label, sentence, t, words
from webui.jobs.commands import engine_cache
from webui.jobs.evals import EvalChoiceError, has_validation, validation_choice
from webui.jobs.paths import PathError
from webui.jobs.runs import RunError
from webui.tabs.chat_loaded import finished_runs
from webui.tabs.file_columns import STAGE, chosen_map, wire_chosen_file

POLL_S = 0.5
SPINNER = "◐◓◑◒"
MAX_NEW_TOKENS = SamplingConfig.model_fields["max_new_tokens"].default
MAX_ROWS = EvalConfig.model_fields["max_rows"].default  # None: every row
GENERAL = EvalConfig.model_fields["general"].default


@dataclass
class EvalTab:
    models: gr.Dropdown
    test_set: gr.Dropdown
    max_rows: gr.Number
    max_new_tokens: gr.Number
    general: gr.Checkbox
    columns: ColumnsPanel  # the test set file's column map (its `maps`: {test set: {standard: column}})
    run: gr.Button
    stop: gr.Button
    status: gr.Markdown
    log: gr.Textbox
    table: gr.HTML
    csv: gr.DownloadButton
    differ: gr.Checkbox
    rows: gr.Dataframe
    job: gr.State  # the name of the evaluation this page follows
    timer: gr.Timer

    def view_outputs(self) -> list[Any]:
        """The outputs of every handler below, in the order `job_view` returns them."""
        return [self.status, self.log, self.table, self.csv, self.rows, self.job, self.timer]


def job_view(ctx: AppContext, job: EvalDir | None, differ: bool, say: Callable[..., str]) -> tuple[Any, ...]:
    """What the tab shows for one evaluation: status line, log, the metrics table, the CSV button, the row view,
    the job followed, and the timer (ticking while the job is under way)."""
    hidden, empty = gr.update(visible=False), gr.update(value=None, visible=False)
    if job is None:
        return "", "", "", hidden, empty, None, gr.Timer(active=False)
    snap = ctx.evals.follow(job)
    log = log_text(snap, say=say, last=200)
    if not snap.finished:
        elapsed = time.time() - (snap.started or job.status.stat().st_mtime)
        done = f"{snap.step}/{snap.total}" if snap.total else "…"
        status = f"{SPINNER[int(elapsed / POLL_S) % 4]} " + say("eval.msg.progress", name=job.name,
                                                                   state=state_label(snap.state, say),
                                                                   done=done, seconds=f"{elapsed:.0f}")
        return status, log, "", hidden, empty, job.name, gr.Timer(active=True)
    if snap.state != "completed":
        key = "eval.msg.stopped" if snap.state == "stopped" else "eval.msg.failed"
        status = f"<span class='wb-error'>{say(key, name=job.name, error=snap.error)}</span>"
        return status, log, "", hidden, empty, job.name, gr.Timer(active=False)
    try:
        table, csv, rows = results(ctx, job, differ, say)
    except (OSError, ValueError) as error:  # results damaged or removed since: said, not raised
        status = f"<span class='wb-error'>{say('eval.msg.unreadable', name=job.name, error=error)}</span>"
        return status, log, "", hidden, empty, job.name, gr.Timer(active=False)
    return say("eval.msg.done", name=job.name), log, table, csv, rows, job.name, gr.Timer(active=False)


def results(ctx: AppContext, job: EvalDir, differ: bool, say: Say) -> tuple[str, Any, Any]:
    """The metrics table (with the judge's note and the per-tool table; `say` words its headings), the CSV
    button (the file written beside the results) and the row view of a completed evaluation."""
    metrics = ctx.evals.metrics(job)
    if not metrics:
        raise ValueError(f"{job.metrics.name} is missing")
    csv_path = ctx.evals.csv_path(job)
    csv_path.write_text(table_csv(metrics), encoding="utf-8")
    return (results_html(metrics, say), gr.update(value=str(csv_path), visible=True),
            rows_update(job, metrics, differ, say))


def rows_update(job: EvalDir, metrics: dict[str, Any], differ: bool, say: Say) -> Any:
    headers, rows = row_view(read_predictions(job.predictions), model_names(metrics), differ, say=say)
    return gr.update(value={"headers": headers, "data": rows}, visible=True)


def choices(ctx: AppContext, request: gr.Request | None = None) -> tuple[Any, Any]:
    """The models (base and the finished runs) and the test sets (dataset files, then the validation split of
    each finished run that held rows out), as the workspace holds them now."""
    runs = finished_runs(ctx)
    sets: list[tuple[str, str]] = list(dataset_choices(ctx.uploads, ctx.assets, pairs_label(request)))
    say = words(request)
    for run in runs:
        if has_validation(ctx.runs.run_dir(run)):
            sets.append((say("eval.validation_of", run=run), validation_choice(run)))
    return gr.update(choices=[BASE, *runs]), gr.update(choices=sets)


def choices_kept(ctx: AppContext, models: list[str] | None, test_set: str | None,
                 request: gr.Request | None = None) -> tuple[Any, Any]:
    """The tab shown again: the lists as the workspace holds them now, with the visitor's picks kept where they are
    still listed (a run deleted since is dropped from both: gradio would refuse it on Start with a raw error)."""
    listed_models, sets = choices(ctx, request)
    return listing(listed_models["choices"], models or []), listing(sets["choices"], test_set)


def opened(ctx: AppContext, request: gr.Request | None = None) -> tuple[Any, ...]:
    """The page opened (or reloaded): the lists as the workspace holds them, with the choices of the newest
    evaluation, the one the tab shows, picked again (models, test set, max rows, tokens, general prompts, column
    map); the defaults where there is none, or where its config cannot be read."""
    models, sets = choices(ctx, request)
    job, keep = ctx.evals.latest(), gr.update()
    try:
        config = job.read_config() if job is not None else None
    except (OSError, ValueError):  # a damaged config.yaml: the tab's view says what it can of that job
        config = None
    if config is None:
        return models, sets, keep, keep, keep, keep
    chosen = [name for name in (BASE if model == BASE else Path(model).name for model in config.models)
              if name in models["choices"]]
    listed = [value for _, value in sets["choices"]]
    test_set = (validation_choice(Path(config.validation_of).name) if config.validation_of
                else listed_as(config.data.path, listed) or config.data.path if config.data is not None else None)
    maps = {test_set: dict(config.data.columns)} if config.data is not None and config.data.columns else {}
    return (gr.update(choices=models["choices"], value=chosen or [BASE]),
            gr.update(choices=sets["choices"], value=test_set) if test_set in listed else sets,
            config.max_rows or 0, config.sampling.max_new_tokens, config.general, maps)


def start(ctx: AppContext, models: list[str] | None, test_set: str | None, max_rows: float | None,
          max_new_tokens: float | None, general: bool, differ: bool, maps: ColumnMaps | None = None,
          request: gr.Request | None = None) -> tuple[Any, ...]:
    """Run pressed: queue an evaluation of the chosen models on the chosen test set (its file read with the Columns
    group's picks) and follow it."""
    say = words(request)
    try:
        config = ctx.evals.config(list(models or []), test_set or "", ctx.runs.run_dir, max_rows,
                                  MAX_NEW_TOKENS if max_new_tokens is None else int(max_new_tokens), general,
                                  columns=chosen_map(maps, test_set or ""))
        check_test_set(config, engine_cache(ctx.workspace))  # a pairs file: refused now, not failed once queued
        job = ctx.evals.start(config)
    except StartRefusedError as refused:  # a file matching no format: its columns are picked under Columns
        raise failure(request, refused_sentence(refused, request)) from None
    except (EvalChoiceError, RunError, PathError) as error:
        raise failure(request, sentence(request, error)) from None  # keyed: in the visitor's language
    return job_view(ctx, job, differ, say)


def stop(ctx: AppContext, name: str | None, differ: bool, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Stop pressed: the followed evaluation ends between two batches (a queued one leaves the queue)."""
    say = words(request)
    job = followed(ctx, name)
    if job is None or not ctx.evals.stop(job):
        raise failure(request, say("eval.msg.not_running"))
    return job_view(ctx, job, differ, say)


def followed(ctx: AppContext, name: str | None) -> EvalDir | None:
    try:
        job = ctx.evals.job(name) if name else None
    except PathError:
        return None
    return job if job is not None and job.path.is_dir() else None


def follow(ctx: AppContext, name: str | None, differ: bool, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Timer tick: the followed evaluation's progress, then its results (and the timer stops)."""
    return job_view(ctx, followed(ctx, name), differ, words(request))


def show_latest(ctx: AppContext, differ: bool, request: gr.Request | None = None) -> tuple[Any, ...]:
    """The page opened: the newest evaluation, finished or under way, or nothing."""
    return job_view(ctx, ctx.evals.latest(), differ, words(request))


def filter_rows(ctx: AppContext, name: str | None, differ: bool, request: gr.Request | None = None) -> Any:
    """The filter toggled: the row view again, all rows or those where a tuned model's answer is not the base's."""
    job = followed(ctx, name)
    metrics = ctx.evals.metrics(job) if job is not None else None
    return rows_update(job, metrics, differ, words(request)) if metrics else gr.update()


def build_evaluate_tab(ctx: AppContext, app: gr.Blocks) -> EvalTab:
    with gr.Tab(t("tab.evaluate"), id="evaluate") as shown:
        with gr.Row():
            models = gr.Dropdown([BASE], value=[BASE], multiselect=True, label=t("eval.models"),
                                 info=t("eval.models_help"), elem_id="wb-eval-models", scale=2)
            test_set = gr.Dropdown([], label=t("eval.test_set"), info=t("eval.test_set_help"),
                                   elem_id="wb-eval-data", scale=2)
            max_rows = gr.Number(value=MAX_ROWS, minimum=0, precision=0, label=t("eval.max_rows"),
                                 info=t("eval.max_rows_help"), elem_id="wb-eval-rows")
            max_new = gr.Number(value=MAX_NEW_TOKENS, minimum=1, maximum=TOKENS_LIMIT, precision=0,
                                label=t("eval.max_new_tokens"),
                                info=t("eval.max_new_tokens_help"), elem_id="wb-eval-tokens")
            general = gr.Checkbox(GENERAL, label=t("eval.general"), info=t("eval.general_help"),
                                  elem_id="wb-eval-general")
        columns = build_columns_panel(STAGE, prefix="wb-eval", maps_id="wb-eval-columns-map")
        with gr.Row():
            run = gr.Button(t("eval.start"), variant="primary", elem_id="wb-eval-start")
            stop_btn = gr.Button(t("eval.stop"), variant="stop", elem_id="wb-eval-stop")
        status = gr.Markdown(elem_id="wb-eval-status")
        log = gr.Textbox(label=t("eval.log"), lines=8, max_lines=8, elem_classes=["wb-log"])
        table = gr.HTML(elem_id="wb-eval-table")
        csv = gr.DownloadButton(t("eval.download_csv"), visible=False, elem_id="wb-eval-csv")
        differ = gr.Checkbox(False, label=t("eval.only_differ"), info=t("eval.only_differ_help"),
                             elem_id="wb-eval-differ")
        rows = gr.Dataframe(interactive=False, wrap=True, visible=False, label=t("eval.rows"),
                            elem_id="wb-eval-rows-view")
        job, timer = gr.State(None), gr.Timer(POLL_S, active=False)
    tab = EvalTab(models=models, test_set=test_set, max_rows=max_rows, max_new_tokens=max_new, general=general,
                  columns=columns, run=run, stop=stop_btn, status=status, log=log, table=table, csv=csv,
                  differ=differ, rows=rows, job=job, timer=timer)
    app.load(bind(opened, ctx), None, [tab.models, tab.test_set, tab.max_rows, tab.max_new_tokens, tab.general,
                                       tab.columns.maps])
    shown.select(bind(choices_kept, ctx), [tab.models, tab.test_set], [tab.models, tab.test_set])
    app.load(bind(show_latest, ctx), tab.differ, tab.view_outputs(), show_progress="hidden")
    wire_chosen_file(ctx, tab.columns, tab.test_set)
    tab.run.click(bind(start, ctx), [tab.models, tab.test_set, tab.max_rows, tab.max_new_tokens, tab.general,
                                     tab.differ, tab.columns.maps], tab.view_outputs())
    tab.stop.click(bind(stop, ctx), [tab.job, tab.differ], tab.view_outputs())
    tab.timer.tick(bind(follow, ctx), [tab.job, tab.differ], tab.view_outputs(), show_progress="hidden")
    tab.differ.change(bind(filter_rows, ctx), [tab.job, tab.differ], tab.rows, show_progress="hidden")
    return tab
