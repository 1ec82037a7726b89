"""Export tab: the verified export of a finished run, as an engine job (webui.jobs.exports), then the merged model
zip and the adapter zip (or, for methods that cannot merge, the reason and the adapter zip).

The tab follows one export job at a time: its timer ticks only while that job is under way. Choosing a run
shows its newest export, so a reload or a restart of launch.py finds an export's result (or failure) again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import EXPORT_DTYPES, PROMPT_LEARNING
from engine.jobs.exports import default_export_dtype
from engine.jobs.rundir import ExportDir
from engine.sentences import Sentence
from webui.components.render import log_text
from webui.components.widgets import listing
from webui.components.wiring import bind, newest
from webui.context import AppContext
from webui.i18n import failure, message, t, words
from webui.jobs.devices import gpu_bf16
from webui.jobs.monitor import JobSnapshot
from webui.jobs.paths import PathError
from webui.jobs.runs import RunError
from webui.tabs.chat_loaded import finished_runs

POLL_S = 0.5
SPINNER = "◐◓◑◒"


@dataclass
class ExportTab:
    run: gr.Dropdown
    dtype: gr.Radio
    shard_gb: gr.Number
    export: gr.Button
    status: gr.Markdown
    log: gr.Textbox
    merged_zip: gr.DownloadButton
    adapter_zip: gr.DownloadButton
    job: gr.State  # the name of the export job this page follows
    timer: gr.Timer

    def view_outputs(self) -> list[Any]:
        """The outputs of every handler below, in the order `job_view` returns them."""
        return [self.status, self.log, self.merged_zip, self.adapter_zip, self.job, self.timer]


def job_view(ctx: AppContext, job: ExportDir | None, say: Callable[..., str]) -> tuple[Any, ...]:
    """What the tab shows for one export job: status line, log, the two download buttons, the job followed,
    and the timer (ticking while the job is under way)."""
    hidden = gr.update(visible=False)
    if job is None:
        return "", "", hidden, hidden, None, gr.Timer(active=False)
    snap = ctx.exports.follow(job)
    log = log_text(snap, say=say, last=200)
    if not snap.finished:
        elapsed = time.time() - (snap.started or job.status.stat().st_mtime)
        status = f"{SPINNER[int(elapsed / POLL_S) % 4]} " + say("export.msg.progress", run=run_of(job),
                                                                   seconds=f"{elapsed:.0f}")
        return status, log, hidden, hidden, job.name, gr.Timer(active=True)
    if snap.state != "completed":
        status = f"<span class='wb-error'>{say('export.msg.failed', error=snap.error)}</span>"
        return status, log, hidden, hidden, job.name, gr.Timer(active=False)
    status, merged_zip, adapter_zip = downloads(ctx, job, snap, say)
    return status, log, merged_zip, adapter_zip, job.name, gr.Timer(active=False)


def run_of(job: ExportDir) -> str:
    try:
        return Path(job.read_config().run_dir).name
    except (OSError, ValueError):
        return job.name


def downloads(ctx: AppContext, job: ExportDir, snap: JobSnapshot, say: Callable[..., str]) -> tuple[str, Any, Any]:
    """The status line and the two download buttons of a completed export.

    A merged export offers the merged model and the adapter. A method that cannot merge (prefix, prompt,
    P-tuning) exported the adapter itself (with HOW_TO_LOAD.md): it is offered once, as the adapter, beside
    the reason, and the merged-model button stays hidden. The files offered are the job folder's own.
    """
    export_zip, adapter_zip = ctx.exports.downloads(job, snap)
    result = snap.result or {}
    if not result.get("merged"):
        reason = Sentence.of(result.get("reason_said")) or result.get("reason")  # keyed: in the visitor's language
        status = say("export.msg.not_mergeable", reason=reason)
        return status, gr.update(visible=False), download(export_zip or adapter_zip)
    done = say("export.msg.done_weights" if ctx.exports.trained_weights(job) else "export.msg.done", out=job.out)
    if export_zip is None:  # exported from the command line without --zip
        done += " " + say("export.msg.no_zip")
    return done, download(export_zip), download(adapter_zip)


def download(path: Path | None) -> Any:
    """A download button offering `path`, hidden when there is none."""
    return gr.update(value=str(path), visible=True) if path else gr.update(visible=False)


def export(ctx: AppContext, run: str | None, dtype: str, shard_gb: float,
           request: gr.Request | None = None) -> tuple[Any, ...]:
    """Export pressed: queue the export of `run` (or follow the one under way) and start following it."""
    say = words(request)
    if not run:
        raise failure(request, say("export.msg.choose_run"))
    shard = 2.0 if shard_gb is None else shard_gb
    if not math.isfinite(shard) or shard <= 0:  # NaN or inf through the API: the engine would get "nanGB"
        raise failure(request, say("export.msg.shard_size", label=say("export.shard"), value=f"{shard!r}"))
    try:
        job = ctx.exports.start(ctx.runs.run_dir(run), dtype, float(shard))
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    return job_view(ctx, job, say)


def dtype_choice(ctx: AppContext, run: str | None, request: gr.Request | None = None) -> Any:
    """The dtype radio for the chosen run: inactive, saying why before Export, for a method that cannot be merged
    (prefix, prompt, P-tuning: the adapter is exported as trained, in one zip); a full or freeze run's model is
    written in the chosen dtype, as a merged one is."""
    try:
        method = ctx.exports.method_of(ctx.runs.run_dir(run)) if run else None
    except (RunError, PathError):  # gone or not a run: Export says why when pressed
        method = None
    if method not in PROMPT_LEARNING:
        return gr.update(interactive=True, info=message(request, "export.dtype_help"))
    return gr.update(interactive=False, info=message(request, "export.adapter_only", method=method))


def run_list(ctx: AppContext, chosen: str | None) -> Any:
    """The finished runs as the workspace holds them now; the chosen run stays chosen while it is listed (one
    deleted since is no longer chosen: gradio would refuse it on Export with a raw error)."""
    return listing(finished_runs(ctx), chosen)


def show_latest(ctx: AppContext, run: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """A run chosen (or the page opened): its newest export, finished or under way, or nothing."""
    return job_view(ctx, ctx.exports.latest(run) if run else None, words(request))


def follow(ctx: AppContext, name: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Timer tick: the followed export's progress, then its result (and the timer stops)."""
    try:
        job = ctx.exports.job(name) if name else None
    except PathError:
        job = None
    return job_view(ctx, job if job is not None and job.path.is_dir() else None, words(request))


def build_export_tab(ctx: AppContext, app: gr.Blocks) -> ExportTab:
    with gr.Tab(t("tab.export"), id="export") as shown:
        with gr.Row():
            run = gr.Dropdown([], label=t("export.run"), elem_id="wb-export-run", scale=2)
            dtype = gr.Radio(list(EXPORT_DTYPES), value=default_export_dtype(gpu_bf16()), label=t("export.dtype"),
                             info=t("export.dtype_help"))
            # a number below the minimum reaches export(), which names the field (widgets.CHECKED_BY_CONFIG)
            shard_gb = gr.Number(value=2, minimum=0.1, step=0.5, label=t("export.shard"), info=t("export.shard_help"),
                                 elem_id="wb-export-shard")
        export_btn = gr.Button(t("export.start"), variant="primary", elem_id="wb-export-start")
        status = gr.Markdown(elem_id="wb-export-status")
        log = gr.Textbox(label=t("export.log"), lines=8, max_lines=8, elem_classes=["wb-log"])
        with gr.Row():
            merged_zip = gr.DownloadButton(t("export.download_merged"), visible=False, elem_id="wb-dl-merged")
            adapter_zip = gr.DownloadButton(t("export.download_adapter"), visible=False, elem_id="wb-dl-adapter")
    tab = ExportTab(run=run, dtype=dtype, shard_gb=shard_gb, export=export_btn, status=status, log=log,
                    merged_zip=merged_zip, adapter_zip=adapter_zip, job=gr.State(None),
                    timer=gr.Timer(POLL_S, active=False))
    refresh = (bind(run_list, ctx), tab.run, tab.run)  # as the Chat tab's (webui.tabs.chat)
    app.load(*refresh)
    shown.select(*refresh)
    tab.run.change(bind(show_latest, ctx), tab.run, tab.view_outputs(), show_progress="hidden")
    newest([tab.run.change], fn=bind(dtype_choice, ctx), inputs=tab.run, outputs=tab.dtype, show_progress="hidden")
    tab.export.click(bind(export, ctx), [tab.run, tab.dtype, tab.shard_gb], tab.view_outputs())
    tab.timer.tick(bind(follow, ctx), tab.job, tab.view_outputs(), show_progress="hidden")
    return tab
