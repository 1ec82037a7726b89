"""The run the Train tab follows: Start, Stop, Cancel, and the live view (progress, loss curve, log).

Polling: the live view's timer (MonitorPanel.timer, FOLLOW_S) is off while nothing is followed. Start turns it on
for the run it started, and so does the page load when a run is training (a reload, or a restart of launch.py,
reattaches); `poll` turns it off once the followed run has finished and its last events are drawn (the page
keeps showing that run, and the watch comes back on). While no run is followed or the one shown has finished (a
fresh page, after Cancel, after a run ended), a slow timer (MonitorPanel.watch, WATCH_S) asks the scheduler's
snapshot `ctx.runs.active()` (a cheap read) whether a run started elsewhere (another tab or visitor, the queue, the
command line) trains now, and follows it: the page picks up such a run as it always did, without a 1 s tick for
every visitor while nothing trains.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from engine.config import ConfigError
from engine.jobs.rundir import FINAL_STATES
from webui.components.columns import refused_sentence
from webui.components.confirm import ask, closed
from webui.components.render import log_text, loss_colors, loss_frame, progress_html, state_label
from webui.context import AppContext
from webui.forms.models import remember_model
from webui.forms.prestart import StartRefusedError, check_start
from webui.i18n import failure, message, sentences, words
from webui.jobs.commands import engine_cache
from webui.jobs.paths import PathError, safe_name
from webui.jobs.runs import RunError
from webui.jobs.scheduler import tail_lines
from webui.tabs.train.handlers import NEW_RUN, Form, list_start_runs
from webui.tabs.train.panels import MonitorPanel


def following(panel: MonitorPanel, name: str) -> dict[Any, Any]:
    """Follow run `name` from its first event: the live view's timer on, the watch off."""
    return {panel.current: name, panel.seen: -1, panel.timer: gr.Timer(active=True),
            panel.watch: gr.Timer(active=False)}


def unfollowed(panel: MonitorPanel, request: gr.Request | None) -> dict[Any, Any]:
    """Follow nothing: a blank live view, its timer off, the watch on."""
    return {panel.current: None, panel.seen: -1, panel.progress: progress_html(None, words(request)),
            panel.loss: loss_frame({}), panel.log: "", panel.loss_colors: {}, panel.timer: gr.Timer(active=False),
            panel.watch: gr.Timer(active=True)}


def start(ctx: AppContext, panel: MonitorPanel, request: gr.Request, run_name: str, *args: Any) -> dict[Any, Any]:
    """Start pressed: the run is started (or queued) and followed; the run-name box empties."""
    form = Form.parse(args)
    try:
        name = safe_name(run_name.strip()) if (run_name or "").strip() else None
        config = form.config(ctx, ctx.runs.runs_dir / (name or NEW_RUN))
        check_start(config, engine_cache(ctx.workspace), ctx.local_model_dir(form.model))
        if name is None and (twin := ctx.runs.same_settings(config)):  # a second press of Start, most likely
            raise failure(request, message(request, "train.msg.same_settings", name=twin))
        name, queued = ctx.runs.submit(config, name)
    except StartRefusedError as refused:
        raise failure(request, refused_sentence(refused, request)) from None
    except (ConfigError, PathError, RunError) as error:
        raise failure(request, sentences(request, error)) from None
    remember_model(ctx.workspace, form.model)
    if not (run_name or "").strip():  # say the name it was given: the Runs tab and the progress panel show it
        gr.Info(message(request, "msg.named_by_date", name=name), title=message(request, "msg.info_title"))
    if queued:
        ahead = ctx.runs.ahead(name) or waits_for(name, ctx.runs.queued(), ctx.runs.active())
        gr.Info(message(request, "msg.queued", name=name, active=ahead or "?"),
                title=message(request, "msg.info_title"))
    return following(panel, name) | {panel.run_name: ""}


def waits_for(name: str, queued: list[str], active: str | None) -> str | None:
    """The run a queued run starts after: the one queued just before it, else the one training (the third run
    Started waits for the second, not the first)."""
    place = queued.index(name) if name in queued else 0
    return queued[place - 1] if place > 0 else active


def stop(ctx: AppContext, name: str | None, request: gr.Request | None = None) -> None:
    try:
        ctx.runs.stop(name or "")
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None


def ask_cancel(ctx: AppContext, name: str | None, request: gr.Request) -> tuple[Any, ...]:
    """Cancel pressed: name the run that would be killed and deleted, and ask (a finished run is not cancelled).
    Returns Confirm.outputs' values (webui.components.confirm.ask)."""
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


def cancel(ctx: AppContext, panel: MonitorPanel, name: str | None, request: gr.Request) -> dict[Any, Any]:
    """Yes pressed: kill the run the question named and delete its folder; the question closes and the live
    view goes blank."""
    try:
        ctx.runs.cancel(name or "")
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    gr.Info(message(request, "train.msg.cancelled", name=name), title=message(request, "msg.info_title"))
    question = dict(zip(panel.confirm_cancel.outputs, closed(), strict=True))
    return question | unfollowed(panel, request)


def poll(ctx: AppContext, panel: MonitorPanel, name: str | None, seen: int, request: gr.Request) -> Any:
    """The live view's tick: the followed run's new events (progress, loss data and colours, log); the timer
    goes off once the run has finished and a tick found nothing new to draw."""
    also = {panel.also: also_training(ctx, name, request)}
    if not name:
        return {panel.timer: gr.Timer(active=False), panel.watch: gr.Timer(active=True)} | also
    try:
        snap = ctx.runs.monitor(name).refresh()
    except (RunError, PathError):  # deleted by another visitor
        return unfollowed(panel, request) | also
    if snap.version == seen:  # finished and drawn: the page keeps showing it and watches for the next run
        return ({panel.timer: gr.Timer(active=False), panel.watch: gr.Timer(active=True)} if snap.finished
                else {}) | also
    tail = tail_lines(ctx.runs.run_dir(name).stdout_log) if snap.state == "failed" else ""
    snaps = {name: snap}
    # a run that has just finished can be started from (SFT, then DPO from it) without a reload or another tab
    ended = {panel.start_run: list_start_runs(ctx, None, request)} if snap.finished and panel.start_run else {}
    say = words(request)
    return {panel.progress: progress_html(snap, say), panel.loss: loss_frame(snaps, say),
            panel.log: log_text(snap, tail, say), panel.seen: snap.version,
            panel.loss_colors: loss_colors(snaps, say)} | also | ended


def watch(ctx: AppContext, panel: MonitorPanel, name: str | None = None, request: gr.Request | None = None) -> Any:
    """The page load and the watch's tick: follow the run that trains now, when the page follows none or shows
    one that has finished (the next run started elsewhere, or the same run resumed or run again)."""
    active = ctx.runs.active()
    if not active or (active == name and ctx.runs.info(name).state in FINAL_STATES):
        # nothing trains (or the shown run's process is still exiting)
        return {panel.also: also_training(ctx, name, request)}
    return following(panel, active) | {panel.also: also_training(ctx, active, request)}


def also_training(ctx: AppContext, followed: str | None, request: gr.Request | None) -> str:
    """The runs training beside the one the tab follows (a `launch.py train` from a terminal starts at once, not
    queued): one line naming them and where they are shown, else ""."""
    others = [name for name in ctx.runs.training() if name != followed]
    if not others or followed is None:
        return ""
    return message(request, "train.msg.also_training", names=", ".join(f"`{name}`" for name in others),
                   followed=f"`{followed}`")
