"""Runs tab: every run of the workspace; reopen one (curves, log), overlay several, compare configs,
stop, remove a queued run, delete a finished one, run a failed or stopped one again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.jobs.rundir import RunDir
from webui.components.confirm import Confirm, ask, build_confirm, closed
from webui.components.plots import colour_state
from webui.components.render import (
    RUN_HEADERS,
    config_diff_html,
    log_text,
    loss_colors,
    loss_frame,
    progress_html,
    runs_rows,
)
from webui.components.wiring import bind, newest
from webui.context import AppContext
from webui.i18n import failure, message, t, words
from webui.jobs.paths import PathError
from webui.jobs.runs import RunError
from webui.jobs.scheduler import tail_lines
from webui.tabs.runs.run_again import wire_run_again
from webui.tabs.train.handlers import plot_titles


@dataclass
class RunsTab:
    table: gr.Dataframe
    selected: gr.Dropdown
    refresh: gr.Button
    stop: gr.Button
    delete: gr.Button
    confirm_delete: Confirm
    progress: gr.HTML
    loss: gr.LinePlot
    log: gr.Textbox
    compare: gr.HTML
    timer: gr.Timer  # ticks only while the Runs tab is shown (webui.app switches it)
    seen: gr.State
    listed: gr.State  # the scheduler's version the table was drawn from
    rerun: gr.Button
    resume: gr.Button
    confirm_rerun: Confirm
    loss_colors: gr.State  # the loss plot's colour map, sent after its data (webui.components.plots)
    tensorboard: gr.Textbox  # the command that opens the workspace's TensorBoard logs, for runs that keep one


def run_headers(request: gr.Request | None) -> list[str]:
    say = words(request)
    return [say("runs.col." + header.replace(" ", "_")) for header in RUN_HEADERS]


def list_runs(ctx: AppContext, selected: list[str] | None, listed: int = -1,
              request: gr.Request | None = None) -> tuple[Any, Any, int]:
    """The runs table and the selection's choices; nothing is sent while no job's status changed since the
    table was drawn (`listed`: the scheduler's version then) and the selection holds only runs that exist."""
    infos = ctx.runs.list()
    names = [i.name for i in infos]
    keep = [n for n in (selected or []) if n in names]
    version = ctx.jobs.version
    if version == listed and keep == list(selected or []):
        return gr.skip(), gr.skip(), listed
    # Only touch the selection when a selected run disappeared, so a tick never undoes a click.
    choice = gr.update(choices=names, value=keep) if keep != list(selected or []) else gr.update(choices=names)
    table = gr.update(value={"headers": run_headers(request), "data": runs_rows(infos, words(request))})
    return table, choice, version


def redraw_runs(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """The table drawn whatever the version (the page opened, Refresh, a delete, the tab shown)."""
    return list_runs(ctx, selected, -1, request)


def snapshots(ctx: AppContext, selected: list[str] | None, request: gr.Request | None) -> tuple[dict, dict]:
    """Snapshot and config of each selected run that exists: one deleted since the page listed it (here or by
    another visitor) is left out, as the next listing takes it off the selection."""
    snaps, configs = {}, {}
    for name in selected or []:
        try:
            snaps[name] = ctx.runs.monitor(name).refresh()
            configs[name] = ctx.runs.run_dir(name).read_config().model_dump(mode="json")
        except RunError:
            snaps.pop(name, None)
        except ValueError as error:  # a damaged config.yaml: the run is still shown, without its config
            configs[name] = {"error": str(error)}
        except PathError as error:
            raise failure(request, str(error)) from None
    return snaps, configs


def show_runs(ctx: AppContext, selected: list[str] | None, seen: str, request: gr.Request) -> tuple[Any, ...]:
    """Progress and log of the first selected run; loss curves of all (data, and the colour of each series);
    configs side by side; the TensorBoard command where a selected run keeps a TensorBoard log.

    `seen` is what this page last drew (selection + event versions); nothing is re-sent while it holds.
    """
    snaps, configs = snapshots(ctx, selected, request)
    if not snaps:  # "No run yet." only where there is none: else the runs listed above are to be picked
        idle = "runs.pick_run" if next(ctx.runs.runs_dir.glob("*/config.yaml"), None) else "msg.no_run"
        return (progress_html(None, words(request), idle), loss_frame({}), "", "", "", {},
                gr.update(value="", visible=False))
    signature = repr([(name, snap.version, snap.state) for name, snap in snaps.items()])
    if signature == seen:
        return (gr.skip(),) * 7
    first = next(iter(snaps))
    tail = tail_lines(RunDir(ctx.runs.runs_dir / first).stdout_log) if snaps[first].state == "failed" else ""
    compare = config_diff_html(configs, words(request)) if len(configs) > 1 else ""
    command = ctx.runs.tensorboard_command(list(snaps))
    say = words(request)
    return (progress_html(snaps[first], say), loss_frame(snaps, say), log_text(snaps[first], tail, say), compare,
            signature, loss_colors(snaps, say), gr.update(value=command, visible=bool(command)))


def stop_selected(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> None:
    if not selected:
        raise failure(request, words(request)("runs.msg.select_run"))
    for name in selected:
        try:
            ctx.runs.stop(name)
        except (RunError, PathError) as error:
            raise failure(request, str(error)) from None


def ask_delete(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Delete pressed: name the runs that would go and ask; a run that is training is refused here, before asking."""
    say = words(request)
    if not selected:
        raise failure(request, say("runs.msg.select_run"))
    for name in selected:
        try:
            training = ctx.runs.info(name).active and ctx.runs.alive(name)
        except (RunError, PathError) as error:
            raise failure(request, str(error)) from None
        if training:
            raise failure(request, say("runs.msg.still_training", name=name))
    return ask(say("runs.confirm_delete", names=", ".join(f"`{name}`" for name in selected)), list(selected))


def delete_confirmed(ctx: AppContext, names: list[str] | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Yes pressed: delete (or take off the queue) exactly the runs the question named, each with its own toast.

    The listing that follows takes them off the selection."""
    for name in names or []:
        try:
            ctx.runs.delete(name)
        except (RunError, PathError) as error:
            raise failure(request, str(error)) from None
        gr.Info(message(request, "runs.msg.deleted", name=name), title=message(request, "msg.info_title"))
    return closed()


def build_runs_tab(ctx: AppContext, app: gr.Blocks) -> RunsTab:
    with gr.Tab(t("tab.runs"), id="runs"):
        table = gr.Dataframe(headers=RUN_HEADERS, interactive=False, label=t("runs.table"), elem_id="wb-runs")
        with gr.Row():
            # allow_custom_value: a run deleted (here or by another visitor) while a tick carries the old selection
            # must reach the handlers, which leave missing runs out, instead of failing gradio's choices check.
            selected = gr.Dropdown([], multiselect=True, allow_custom_value=True, label=t("runs.select"),
                                   info=t("runs.select_help"), elem_id="wb-runs-select", scale=3)
            refresh = gr.Button(t("runs.refresh"), scale=0)
            stop = gr.Button(t("runs.stop"), scale=0, elem_id="wb-runs-stop")
            resume = gr.Button(t("runs.resume"), scale=0, elem_id="wb-runs-resume")
            rerun = gr.Button(t("runs.rerun"), scale=0, elem_id="wb-runs-rerun")
            delete = gr.Button(t("runs.delete"), variant="stop", scale=0, elem_id="wb-runs-delete")
        confirm_delete = build_confirm("wb-runs-confirm", "runs.confirm_yes", "runs.confirm_no")
        confirm_rerun = build_confirm("wb-runs-rerun-confirm", "runs.rerun_yes", "runs.rerun_no")
        with gr.Row():  # a run that failed for memory: a configuration that fits (webui.tabs.runs.run_again)
            advice = gr.Markdown(visible=False, elem_id="wb-runs-advice")
            advised = gr.Button(t("runs.rerun_advised"), visible=False, scale=0, elem_id="wb-runs-rerun-advised")
        progress = gr.HTML("")
        with gr.Row():
            loss = gr.LinePlot(loss_frame({}), x="step", y="loss", color="series", label=t("train.loss"), scale=3,
                               elem_id="wb-runs-loss")
            log = gr.Textbox(label=t("train.log"), lines=14, max_lines=14, elem_classes=["wb-log"], scale=2)
        loss_colors = colour_state(loss, titled=True)
        tensorboard = gr.Textbox(label=t("runs.tensorboard"), info=t("runs.tensorboard_help"), interactive=False,
                                 buttons=["copy"], visible=False, elem_id="wb-runs-tensorboard")
        compare = gr.HTML(elem_id="wb-compare")
        timer = gr.Timer(2.0, active=False)
        seen = gr.State("")
        listed = gr.State(-1)
    tab = RunsTab(table=table, selected=selected, refresh=refresh, stop=stop, delete=delete,
                  confirm_delete=confirm_delete, progress=progress, loss=loss, log=log, compare=compare, timer=timer,
                  seen=seen, listed=listed, rerun=rerun, resume=resume, confirm_rerun=confirm_rerun,
                  loss_colors=loss_colors, tensorboard=tensorboard)
    listing = (bind(redraw_runs, ctx), [tab.selected], [tab.table, tab.selected, tab.listed])
    view = (bind(show_runs, ctx), [tab.selected, tab.seen],
            [tab.progress, tab.loss, tab.log, tab.compare, tab.seen, tab.loss_colors, tab.tensorboard])
    app.load(*listing)
    app.load(plot_titles, None, tab.loss)
    tab.refresh.click(*listing, show_progress="hidden")
    tab.timer.tick(bind(list_runs, ctx), [tab.selected, tab.listed], [tab.table, tab.selected, tab.listed],
                   show_progress="hidden")
    newest([tab.selected.change, tab.timer.tick], fn=view[0], inputs=view[1], outputs=view[2], show_progress="hidden")
    tab.stop.click(bind(stop_selected, ctx), [tab.selected], None)
    tab.delete.click(bind(ask_delete, ctx), [tab.selected], tab.confirm_delete.outputs)
    tab.confirm_delete.yes.click(bind(delete_confirmed, ctx), tab.confirm_delete.pending,
                                 tab.confirm_delete.outputs).then(*listing)
    wire_run_again(ctx, tab.rerun, tab.confirm_rerun, tab.resume, tab.selected, listing, advice, advised, tab.timer)
    return tab
