"""Export tab: run the verified export of a finished run in an engine process, then offer the merged
model zip and the adapter zip (or, for methods that cannot merge, the reason and the adapter zip)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.exports import ExportJob
from webui.i18n import failure, t, words
from webui.paths import PathError
from webui.runs import RunError
from webui.tabs.chat import finished_runs
from webui.wiring import bind

DTYPES = ("float16", "bfloat16", "float32")
POLL_S = 0.5


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


def export(ctx: AppContext, run: str | None, dtype: str, shard_gb: float,
           request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
    """Start (or follow) the export of `run` and stream its progress until the downloads are ready."""
    hidden = gr.update(visible=False)
    say = words(request)
    if not run:
        raise failure(request, say("export.msg.choose_run"))
    try:
        run_dir = ctx.runs.run_dir(run)
        job = ctx.exports.start(run_dir.path, dtype, float(shard_gb or 2))
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    spinner = "◐◓◑◒"
    while not job.done:
        elapsed = time.time() - job.started
        progress = say("export.msg.progress", run=run, seconds=f"{elapsed:.0f}")
        yield f"{spinner[int(elapsed / POLL_S) % 4]} {progress}", "\n".join(job.lines[-40:]), hidden, hidden
        time.sleep(POLL_S)
    result = job.result
    if job.failed:
        failed = say("export.msg.failed", error=result.get("error"))
        yield f"<span class='wb-error'>{failed}</span>", "\n".join(job.lines), hidden, hidden
        return
    status, merged_zip, adapter_zip = downloads(ctx, job, say)
    yield status, "\n".join(job.lines), merged_zip, adapter_zip


def downloads(ctx: AppContext, job: ExportJob, say: Callable[..., str]) -> tuple[str, Any, Any]:
    """The status line and the two download buttons of a completed export.

    A merged export offers the merged model and the adapter. A method that cannot merge (prefix, prompt,
    P-tuning) exported the adapter itself (with HOW_TO_LOAD.md): it is offered once, as the adapter, beside
    the reason, and the merged-model button stays hidden.
    """
    export_zip, adapter_zip = ctx.exports.download_paths(job)
    if not job.result.get("merged"):
        status = say("export.msg.not_mergeable", reason=job.result.get("reason"))
        return status, gr.update(visible=False), download(export_zip or adapter_zip)
    return say("export.msg.done", out=job.result.get("out")), download(export_zip), download(adapter_zip)


def download(path: Path | None) -> Any:
    """A download button offering `path`, hidden when there is none."""
    return gr.update(value=str(path), visible=True) if path else gr.update(visible=False)


def build_export_tab(ctx: AppContext, app: gr.Blocks) -> ExportTab:
    with gr.Tab(t("tab.export"), id="export"):
        with gr.Row():
            run = gr.Dropdown([], label=t("export.run"), elem_id="wb-export-run", scale=2)
            dtype = gr.Radio(list(DTYPES), value="float16", label=t("export.dtype"), info=t("export.dtype_help"))
            shard_gb = gr.Number(value=2, minimum=0.1, step=0.5, label=t("export.shard"), info=t("export.shard_help"))
        export_btn = gr.Button(t("export.start"), variant="primary", elem_id="wb-export-start")
        status = gr.Markdown(elem_id="wb-export-status")
        log = gr.Textbox(label=t("export.log"), lines=8, max_lines=8, autoscroll=True)
        with gr.Row():
            merged_zip = gr.DownloadButton(t("export.download_merged"), visible=False, elem_id="wb-dl-merged")
            adapter_zip = gr.DownloadButton(t("export.download_adapter"), visible=False, elem_id="wb-dl-adapter")
    tab = ExportTab(run, dtype, shard_gb, export_btn, status, log, merged_zip, adapter_zip)
    refresh = (lambda: gr.update(choices=finished_runs(ctx)), None, tab.run)
    app.load(*refresh)
    tab.run.focus(*refresh)
    tab.export.click(bind(export, ctx), [tab.run, tab.dtype, tab.shard_gb],
                     [tab.status, tab.log, tab.merged_zip, tab.adapter_zip], concurrency_limit=2,
                     concurrency_id="export")
    return tab
