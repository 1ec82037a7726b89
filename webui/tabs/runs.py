"""Runs tab: every run of the workspace; reopen one (curves, log), overlay several, compare configs,
stop, remove a queued run, delete a finished one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.rundir import RunDir
from webui.context import AppContext
from webui.i18n import failure, t
from webui.paths import PathError
from webui.render import RUN_HEADERS, config_diff_html, log_text, loss_frame, progress_html, runs_rows
from webui.runs import RunError, read_config, tail_lines
from webui.tabs.train_handlers import plot_titles, words
from webui.wiring import bind


@dataclass
class RunsTab:
    table: gr.Dataframe
    selected: gr.Dropdown
    refresh: gr.Button
    stop: gr.Button
    delete: gr.Button
    progress: gr.HTML
    loss: gr.LinePlot
    log: gr.Textbox
    compare: gr.HTML
    timer: gr.Timer
    seen: gr.State


def run_headers(request: gr.Request | None) -> list[str]:
    say = words(request)
    return [say("runs.col." + header.replace(" ", "_")) for header in RUN_HEADERS]


def list_runs(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> tuple[Any, Any]:
    infos = ctx.runs.list()
    names = [i.name for i in infos]
    keep = [n for n in (selected or []) if n in names]
    # Only touch the selection when a selected run disappeared, so a tick never undoes a click.
    choice = gr.update(choices=names, value=keep) if keep != list(selected or []) else gr.update(choices=names)
    return gr.update(value={"headers": run_headers(request), "data": runs_rows(infos, words(request))}), choice


def show_runs(ctx: AppContext, selected: list[str] | None, seen: str, request: gr.Request) -> tuple[Any, ...]:
    """Progress and log of the first selected run; loss curves of all; configs side by side.

    `seen` is what this page last drew (selection + event versions); nothing is re-sent while it holds.
    """
    if not selected:
        return progress_html(None, words(request)), loss_frame({}), "", "", ""
    snaps, configs = {}, {}
    try:
        for name in selected:
            snaps[name] = ctx.runs.monitor(name).refresh()
            configs[name] = read_config(ctx.runs.run_dir(name))
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    signature = repr([(name, snap.version, snap.state) for name, snap in snaps.items()])
    if signature == seen:
        return (gr.skip(),) * 5
    first = selected[0]
    tail = tail_lines(RunDir(ctx.runs.runs_dir / first).stdout_log) if snaps[first].state == "failed" else ""
    compare = config_diff_html(configs, words(request)) if len(configs) > 1 else ""
    return (progress_html(snaps[first], words(request)), loss_frame(snaps), log_text(snaps[first], tail), compare,
            signature)


def act(ctx: AppContext, action: str, selected: list[str] | None, request: gr.Request | None = None) -> None:
    if not selected:
        raise failure(request, words(request)("runs.msg.select_run"))
    for name in selected:
        try:
            if action == "stop":
                ctx.runs.stop(name)
            elif ctx.runs.info(name).state == "queued":
                ctx.runs.cancel(name)
            else:
                ctx.runs.delete(name)
        except (RunError, PathError) as error:
            raise failure(request, str(error)) from None


def stop_selected(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> None:
    act(ctx, "stop", selected, request)


def delete_selected(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> None:
    act(ctx, "delete", selected, request)


def build_runs_tab(ctx: AppContext, app: gr.Blocks) -> RunsTab:
    with gr.Tab(t("tab.runs"), id="runs"):
        table = gr.Dataframe(headers=RUN_HEADERS, interactive=False, label=t("runs.table"), elem_id="wb-runs")
        with gr.Row():
            selected = gr.Dropdown([], multiselect=True, label=t("runs.select"), info=t("runs.select_help"),
                                   elem_id="wb-runs-select", scale=3)
            refresh = gr.Button(t("runs.refresh"), scale=0)
            stop = gr.Button(t("runs.stop"), scale=0)
            delete = gr.Button(t("runs.delete"), variant="stop", scale=0)
        progress = gr.HTML("")
        with gr.Row():
            loss = gr.LinePlot(loss_frame({}), x="step", y="loss", color="series", label=t("train.loss"), scale=3)
            log = gr.Textbox(label=t("train.log"), lines=14, max_lines=14, autoscroll=True, scale=2)
        compare = gr.HTML(elem_id="wb-compare")
        timer = gr.Timer(2.0)
        seen = gr.State("")
    tab = RunsTab(table, selected, refresh, stop, delete, progress, loss, log, compare, timer, seen)
    listing = (bind(list_runs, ctx), [tab.selected], [tab.table, tab.selected])
    view = (bind(show_runs, ctx), [tab.selected, tab.seen], [tab.progress, tab.loss, tab.log, tab.compare, tab.seen])
    app.load(*listing)
    app.load(plot_titles, None, tab.loss)
    gr.on([tab.refresh.click, tab.timer.tick], *listing, show_progress="hidden")
    gr.on([tab.selected.change, tab.timer.tick], *view, show_progress="hidden", trigger_mode="always_last")
    tab.stop.click(bind(stop_selected, ctx), [tab.selected], None)
    tab.delete.click(bind(delete_selected, ctx), [tab.selected], None).then(*listing)
    return tab
