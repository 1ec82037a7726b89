"""Run again and Resume, on the Runs tab: start a failed or stopped run afresh from its config, or continue it
from its newest complete checkpoint, through the queue; and "Run again with this" for a run that ran out of memory
(issue 26 item 4): the advice of a configuration that fits (engine.estimate.advice: the engine's own, written at its
refusal, else the estimate's from config.json after an out-of-memory death), applied, resuming from the newest
complete checkpoint where there is one.

Run again deletes what the run wrote (weights, checkpoints, curves, logs), so the page asks first, naming the
runs; Resume deletes nothing and goes at once.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from engine.config import ConfigError, load_config
from engine.estimate import room
from engine.estimate.advice import ADVICE, Advice, after_failure
from engine.model.config_json import ModelFileError
from webui.components.confirm import Confirm, ask, closed
from webui.components.render import state_label
from webui.components.wiring import bind, newest
from webui.context import AppContext
from webui.forms.models import model_config_json
from webui.forms.prestart import StartRefusedError, check_start
from webui.i18n import failure, message, words
from webui.jobs.commands import engine_cache
from webui.jobs.paths import PathError
from webui.jobs.runs import RERUNNABLE, RunError


def ask_rerun(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Run again pressed: refuse a run that is not failed or stopped, else name the runs and ask."""
    say = words(request)
    if not selected:
        raise failure(request, say("runs.msg.select_run"))
    for name in selected:
        try:
            state = ctx.runs.info(name).state
        except (RunError, PathError) as error:
            raise failure(request, str(error)) from None
        if state == "completed":  # its results would be deleted: its settings come back through its config
            raise failure(request, say("runs.msg.rerun_completed", name=name))
        if state not in RERUNNABLE:
            raise failure(request, say("runs.msg.rerun_not_finished", name=name, state=state_label(state, say)))
    for name in selected:
        refuse_known_failure(ctx, name, request)
    return ask(say("runs.confirm_rerun", names=", ".join(f"`{name}`" for name in selected)), list(selected))


def refuse_known_failure(ctx: AppContext, name: str, request: gr.Request | None) -> None:
    """Refuse, before asking, to run again a run the page knows would fail the same way (its model unreachable, its
    dataset gone or rejected by the inspection: webui.forms.prestart). A config that no longer loads is left to
    Run again itself, which says so, as is a folder that is no run."""
    try:
        config = load_config(ctx.runs.run_dir(name).config)
        check_start(config, engine_cache(ctx.workspace), ctx.local_model_dir(config.model.name_or_path))
    except StartRefusedError as refused:
        raise failure(request, message(request, refused.key, **refused.values)) from None
    except (ConfigError, PathError, RunError):
        return


def requeue_each(ctx: AppContext, names: list[str], action: str, request: gr.Request | None) -> None:
    """Run again (`action` "rerun") or Resume ("resume") each named run, each with its own toast; the first that
    cannot be requeued is the error."""
    for name in names:
        try:
            queued = getattr(ctx.runs, action)(name)
        except (RunError, PathError) as error:
            raise failure(request, str(error)) from None
        ahead = ctx.runs.ahead(name) or ctx.runs.active() or "?"
        text = (message(request, f"runs.msg.{action}_queued", name=name, active=ahead) if queued
                else message(request, f"runs.msg.{action}_started", name=name))
        gr.Info(text, title=message(request, "msg.info_title"))


def rerun_confirmed(ctx: AppContext, names: list[str] | None, request: gr.Request | None = None) -> tuple[Any, ...]:
    """Yes pressed: start (or queue) exactly the runs the question named."""
    requeue_each(ctx, names or [], "rerun", request)
    return closed()


def resume_selected(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> None:
    """Resume pressed: each selected run continues from its newest complete checkpoint (or waits in the queue)."""
    if not selected:
        raise failure(request, words(request)("runs.msg.select_run"))
    requeue_each(ctx, selected, "resume", request)


def advice_for(ctx: AppContext, name: str) -> Advice | None:
    """The memory advice of a failed run: RUN/advice.json (the engine's, at its refusal), else the estimate's for
    a run that died out of memory; None for a run that did not fail for memory, or where none fits."""
    try:
        info = ctx.runs.info(name)
        run = ctx.runs.run_dir(name)
        if info.state != "failed":
            return None
        error = str(run.read_status().get("error") or "")
        written = run.path / ADVICE
        if written.is_file():
            import json

            return Advice.from_json(json.loads(written.read_text(encoding="utf-8")))
        config = load_config(run.config)
        found = model_config_json(config.model.name_or_path, ctx.local_model_dir(config.model.name_or_path))
    except (RunError, PathError, ConfigError, ModelFileError, ValueError, OSError):
        return None  # the run's own panel says what is wrong with it
    if found is None:
        return None
    gpu = room.gpu_free()
    free = gpu if gpu is not None else room.memory_room()[0]
    return after_failure(config, found, error, free, "gpu" if gpu is not None else "cpu")


def show_advice(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> tuple[Any, Any]:
    """The advice line and the "Run again with this" button, for one selected run that failed for memory."""
    found = advice_for(ctx, selected[0]) if selected and len(selected) == 1 else None
    if found is None or not found.changes:
        text = message(request, "runs.advice_cutoff", cutoff=found.cutoff) if found and found.cutoff else ""
        return gr.update(value=text, visible=bool(text)), gr.update(visible=False)
    text = message(request, "runs.advice", sentence=found.sentence(), diff=found.diff())
    return gr.update(value=text, visible=True), gr.update(visible=True)


def rerun_advised(ctx: AppContext, selected: list[str] | None, request: gr.Request | None = None) -> None:
    """Run again with this pressed: the advice applied, resumed from the newest checkpoint where there is one."""
    if not selected or len(selected) != 1:
        raise failure(request, words(request)("runs.msg.select_run"))
    name = selected[0]
    found = advice_for(ctx, name)
    if found is None or not found.changes:
        raise failure(request, message(request, "runs.msg.no_advice", name=name))
    try:
        queued = ctx.runs.rerun_with(name, {key: then for key, (_, then) in found.changes.items()})
    except (RunError, PathError) as error:
        raise failure(request, str(error)) from None
    text = (message(request, "runs.msg.rerun_queued", name=name, active=ctx.runs.active() or "?") if queued
            else message(request, "runs.msg.advice_started", name=name))
    gr.Info(text, title=message(request, "msg.info_title"))


def wire_run_again(ctx: AppContext, button: gr.Button, confirm: Confirm, resume: gr.Button, selected: gr.Dropdown,
                   listing: tuple[Any, ...], advice: gr.Markdown, advised: gr.Button, timer: gr.Timer) -> None:
    newest([selected.change, timer.tick], fn=bind(show_advice, ctx), inputs=[selected], outputs=[advice, advised],
           show_progress="hidden")  # beside the run's view (webui.tabs.runs.tab), on the same triggers
    advised.click(bind(rerun_advised, ctx), [selected], None).then(*listing)
    button.click(bind(ask_rerun, ctx), [selected], confirm.outputs)
    confirm.yes.click(bind(rerun_confirmed, ctx), confirm.pending, confirm.outputs).then(*listing)
    resume.click(bind(resume_selected, ctx), [selected], None).then(*listing)
