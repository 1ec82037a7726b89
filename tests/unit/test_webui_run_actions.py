"""The page's run actions at the handler level: overlaid loss curves carry a colour per series, Delete and
Cancel ask first (naming what goes) and report success as success, and an export that cannot merge
offers only the adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jobs.events import EventWriter
from engine.jobs.rundir import ExportDir
from tests import run_folders
from tests.run_folders import TWO_LOSSES
from tests.train_tab import train_tab
from webui.components import plots
from webui.components.render import RUN_COLORS, loss_colors, loss_frame
from webui.context import AppContext
from webui.jobs.monitor import JobSnapshot
from webui.tabs import export as export_tab
from webui.tabs.runs import tab as runs_tab
from webui.tabs.train import follow as train_follow

EVAL_LOSS = {"kind": "metrics", "t": 1, "step": 2, "eval_loss": 1.5}


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(tmp_path / "ws")


def write_run(ctx: AppContext, name: str, state: str = "completed", method: str = "lora") -> Path:
    """Two train losses and one eval loss."""
    return run_folders.write_run(ctx, name, state, method, events=(*TWO_LOSSES, EVAL_LOSS))


def test_loss_series_are_named_by_run_and_each_has_a_colour():
    empty = loss_frame({})
    assert (str(empty["step"].dtype), str(empty["loss"].dtype)) == ("int64", "float64")  # numeric axes from the start
    one = {"a": JobSnapshot("a", curves={"loss": [(1, 2.0), (2, 1.0)]})}
    assert list(loss_frame(one)["series"]) == ["train", "train"]
    assert loss_colors(one) == {"train": RUN_COLORS[0][0]}  # no eval point yet: no eval series to colour
    two = {"a": JobSnapshot("a", curves={"loss": [(1, 2.0)], "eval_loss": [(1, 2.5)]}),
           "b": JobSnapshot("b", curves={"loss": [(1, 3.0)], "eval_loss": [(1, 3.5)]})}
    assert list(loss_frame(two)["series"]) == ["a · train", "a · eval", "b · train", "b · eval"]
    assert loss_colors(two) == {"a · train": RUN_COLORS[0][0], "a · eval": RUN_COLORS[0][1],
                                "b · train": RUN_COLORS[1][0], "b · eval": RUN_COLORS[1][1]}


def test_the_loss_plot_draws_every_curve_a_job_reports_but_the_trainers_bookkeeping():
    """A curve a job adds (a reward margin, an eval score) is drawn under its own name with a colour of its own;
    learning rate, grad norm and tokens/s (other scales, shown by the log and the progress bar) are not drawn."""
    snap = JobSnapshot("a", curves={"loss": [(1, 2.0)], "learning_rate": [(1, 1e-4)], "tokens_per_s": [(1, 900.0)],
                                    "reward_margin": [(1, 0.5), (2, 0.7)], "eval_score": [(2, 0.9)]})
    frame = loss_frame({"a": snap})
    assert list(frame["series"]) == ["train", "reward_margin", "reward_margin", "eval_score"]
    colors = loss_colors({"a": snap})
    assert set(colors) == {"train", "reward_margin", "eval_score"} and len(set(colors.values())) == 3


def test_runs_tab_sends_the_colour_of_every_overlaid_series(ctx):
    write_run(ctx, "a")
    write_run(ctx, "b")
    _, frame, _, _, _, colors, _ = runs_tab.show_runs(ctx, ["a", "b"], "", None)
    assert set(frame["series"]) == {"a · train", "a · eval", "b · train", "b · eval"}
    assert set(colors) == set(frame["series"])  # the chart is rebuilt with all four series
    assert plots.recolour(colors) == plots.gr.update(color_map=colors)
    assert plots.recolour({}) == plots.gr.skip()


def test_a_run_with_a_tensorboard_log_shows_the_command_that_opens_the_workspaces(ctx):
    write_run(ctx, "plain")
    assert runs_tab.show_runs(ctx, ["plain"], "", None)[-1] == runs_tab.gr.update(value="", visible=False)
    (write_run(ctx, "logged") / "tb").mkdir()  # RUN/tb/: what train.report_to tensorboard writes
    command = f"tensorboard --logdir {ctx.runs.runs_dir}"
    assert runs_tab.show_runs(ctx, ["plain", "logged"], "", None)[-1] == runs_tab.gr.update(value=command,
                                                                                            visible=True)
    assert ctx.runs.tensorboard_command(["plain"]) == ""


def test_delete_asks_naming_the_runs_then_deletes_with_an_info(ctx, capsys):
    write_run(ctx, "a")
    write_run(ctx, "b")
    pending, box, question = runs_tab.ask_delete(ctx, ["a", "b"], None)
    assert pending == ["a", "b"] and box["visible"] is True
    assert "`a`, `b`" in question and "cannot be undone" in question
    assert sorted(i.name for i in ctx.runs.list()) == ["a", "b"]  # asking deletes nothing
    pending, box, question = runs_tab.delete_confirmed(ctx, ["a"], None)
    assert (pending, box["visible"], question) == (None, False, "")
    assert [i.name for i in ctx.runs.list()] == ["b"]
    assert "Deleted a." in capsys.readouterr().out  # gr.Info outside a page prints its message
    # The page's timer may still send the deleted run in its selection: it is left out, not an error.
    progress, frame, *_ = runs_tab.show_runs(ctx, ["a", "b"], "", None)
    assert set(frame["series"]) == {"train", "eval"}
    progress, frame, *_, colors, _ = runs_tab.show_runs(ctx, ["a"], "", None)
    assert frame.empty and colors == {}


def test_delete_refuses_a_training_run_before_asking(ctx, monkeypatch):
    write_run(ctx, "busy", state="training")
    monkeypatch.setattr(ctx.runs, "alive", lambda _name: True)
    with pytest.raises(runs_tab.gr.Error, match="still training"):
        runs_tab.ask_delete(ctx, ["busy"], None)
    with pytest.raises(runs_tab.gr.Error, match="Select a run first"):
        runs_tab.ask_delete(ctx, [], None)


def test_cancel_asks_naming_the_run_then_deletes_it_with_an_info(ctx, capsys):
    write_run(ctx, "waiting", state="queued")
    pending, box, question = train_follow.ask_cancel(ctx, "waiting", None)
    assert pending == "waiting" and box["visible"] is True and "`waiting`" in question
    assert (ctx.runs.runs_dir / "waiting").is_dir()  # asking cancels nothing
    panel = train_tab(ctx).monitor
    shown = train_follow.cancel(ctx, panel, "waiting", None)
    pending, box, question = (shown[c] for c in panel.confirm_cancel.outputs)
    assert (pending, box["visible"], shown[panel.current], shown[panel.log]) == (None, False, None, "")
    assert shown[panel.timer].active is False and shown[panel.watch].active is True  # nothing followed now
    assert not (ctx.runs.runs_dir / "waiting").exists()
    assert "Cancelled waiting" in capsys.readouterr().out


def test_cancel_refuses_a_finished_run_and_no_run(ctx):
    write_run(ctx, "done")
    with pytest.raises(train_follow.gr.Error, match="already finished"):
        train_follow.ask_cancel(ctx, "done", None)
    with pytest.raises(train_follow.gr.Error, match="no run to cancel"):
        train_follow.ask_cancel(ctx, None, None)
    assert (ctx.runs.runs_dir / "done").is_dir()


def finished_export(ctx: AppContext, name: str, merged: bool) -> tuple:
    """What the Export tab shows for a run whose export job has completed, as the engine leaves its folder."""
    write_run(ctx, name, method="lora" if merged else "prefix")
    job = ExportDir(ctx.exports.exports_dir / f"{name}-float16")
    job.path.mkdir(parents=True)
    job.config.write_text(f"run_dir: {ctx.runs.runs_dir / name}\ndtype: float16\n")
    for path in (job.zip, job.adapter_zip):
        path.write_bytes(b"PK")
    result = {"merged": merged, "out": str(job.out), "zip": str(job.zip), "adapter_zip": str(job.adapter_zip)}
    if not merged:
        result["reason"] = "Prefix tuning learns virtual tokens, so it cannot be merged."
    with EventWriter(job.events) as events:
        events.status("completed", result=result)
    job.write_status("completed", pid=None)
    return export_tab.show_latest(ctx, name)


def test_export_that_cannot_merge_offers_only_the_adapter(ctx):
    status, log, merged, adapter, job, timer = finished_export(ctx, "pfx", merged=False)
    assert "cannot be merged" in status and "Adapter only" in status
    assert merged["visible"] is False  # no "Download merged model" holding an adapter
    assert adapter["visible"] is True and adapter["value"].endswith("pfx-float16.zip")  # the export: adapter + how-to


def test_merged_export_offers_both(ctx):
    status, log, merged, adapter, job, timer = finished_export(ctx, "lr", merged=True)
    assert job == "lr-float16" and timer.active is False  # a finished export is not polled
    assert status.startswith("Done")
    assert merged["visible"] is True and merged["value"].endswith("lr-float16.zip")
    assert adapter["visible"] is True and adapter["value"].endswith("lr-float16-adapter.zip")


def test_run_again_refuses_a_completed_run_and_says_how_to_train_its_settings_again(ctx):
    """Run again deletes what a run wrote, so a completed run is refused; the sentence names its config.yaml,
    which the Train tab's saved configs offer (train_handlers.config_choices)."""
    import gradio as gr

    from webui.tabs.runs import run_again
    from webui.tabs.train import handlers as train_handlers

    write_run(ctx, "done")
    write_run(ctx, "broken", state="failed")
    with pytest.raises(gr.Error, match="runs/done/config.yaml under Saved configs") as refused:
        run_again.ask_rerun(ctx, ["broken", "done"])
    assert "would delete its results" in refused.value.message
    ctx.runs.scheduler.scan()
    assert "runs/done/config.yaml" in [label for label, _ in train_handlers.config_choices(ctx)]
    with pytest.raises(gr.Error, match=r"\*\*tiny\*\* is not a local folder"):  # a failed run is asked about only
        run_again.ask_rerun(ctx, ["broken"])  # when it could start: its model "tiny" is no folder, the hub offline


@pytest.mark.parametrize(("state", "eta"), [("training", "0:44"), ("stopped", "–"), ("completed", "–")])
def test_progress_shows_a_time_left_only_while_the_run_trains(state: str, eta: str):
    """The last ETA a run logged is no time left once it has stopped (or ended)."""
    from webui.components.render import progress_html

    snap = JobSnapshot("r", state=state, step=123, total=300, elapsed_s=30.0, eta_s=44.0)
    shown = progress_html(snap)
    assert f"ETA {eta} ·" in shown and ("0:44" in shown) == (state == "training"), shown
