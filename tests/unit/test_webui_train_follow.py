"""The Train tab's live view polls only while it follows a run: Start and the page load (when a run trains)
turn its 1 s timer on, a tick turns it off once the run has finished and is drawn, and a slow watch picks up a
run started elsewhere while the page follows none."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from engine.config import parse_config
from tests import run_folders
from tests.run_folders import TWO_LOSSES
from tests.train_tab import train_tab
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms.fields import SEED
from webui.tabs.train import follow as train_follow
from webui.tabs.train.panels import FOLLOW_S, WATCH_S


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(tmp_path / "ws")


def write_run(ctx: AppContext, name: str, state: str) -> None:
    run_folders.write_run(ctx, name, state, events=TWO_LOSSES)


def active(timer_update) -> bool:
    return timer_update.active


def test_timers_as_the_page_opens(ctx):
    panel = train_tab(ctx).monitor
    assert (panel.timer.value, panel.timer.active) == (FOLLOW_S, False)  # nothing followed: no 1 s tick
    assert (panel.watch.value, panel.watch.active) == (WATCH_S, True)


def test_load_and_watch_follow_a_run_that_trains(ctx, monkeypatch):
    panel = train_tab(ctx).monitor
    assert train_follow.watch(ctx, panel) == {panel.also: ""}  # nothing trains: nothing changes
    monkeypatch.setattr(ctx.runs, "active", lambda: "elsewhere")
    shown = train_follow.watch(ctx, panel)  # the page load (no input), or a tick of the watch
    assert (shown[panel.current], shown[panel.seen]) == ("elsewhere", -1)
    assert active(shown[panel.timer]) and not active(shown[panel.watch])
    write_run(ctx, "elsewhere", "training")
    again = train_follow.watch(ctx, panel, "elsewhere")  # the run shown was resumed or run again: followed anew
    assert (again[panel.current], again[panel.seen]) == ("elsewhere", -1)
    assert active(again[panel.timer]) and not active(again[panel.watch])


def test_a_finished_run_shown_gives_way_to_the_next_run_that_trains(ctx, monkeypatch):
    """Run again or Resume on the Runs tab, or a run from the command line, after the Train tab's run ended."""
    panel = train_tab(ctx).monitor
    write_run(ctx, "done", "completed")
    drawn = train_follow.poll(ctx, panel, "done", -1, None)
    finished = train_follow.poll(ctx, panel, "done", drawn[panel.seen], None)
    assert not active(finished[panel.timer]) and active(finished[panel.watch])  # keeps showing it, and watches
    assert train_follow.watch(ctx, panel, "done") == {panel.also: ""}  # nothing else trains
    monkeypatch.setattr(ctx.runs, "active", lambda: "done")  # its process still exiting: not followed again
    assert train_follow.watch(ctx, panel, "done") == {panel.also: ""}
    monkeypatch.setattr(ctx.runs, "active", lambda: "next")
    shown = train_follow.watch(ctx, panel, "done")
    assert shown[panel.current] == "next" and active(shown[panel.timer]) and not active(shown[panel.watch])


def test_start_follows_the_new_run(ctx, monkeypatch):
    panel = train_tab(ctx).monitor
    submitted = []
    monkeypatch.setattr(ctx.runs, "submit", lambda _config, name: submitted.append(name) or ("r1", False))
    checked = []  # the pre-start check (webui.forms.prestart, tested with the engine in tests/webui) runs first
    monkeypatch.setattr(train_follow, "check_start", lambda config, *_: checked.append(config.model.name_or_path))
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text('{"instruction": "a", "output": "b"}\n')
    args = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(forms.defaults())]
    shown = train_follow.start(ctx, panel, None, "r1", *args)
    assert submitted == ["r1"] and checked == ["tiny"]
    assert (shown[panel.current], shown[panel.seen], shown[panel.run_name]) == ("r1", -1, "")
    assert active(shown[panel.timer]) and not active(shown[panel.watch])


def test_poll_draws_then_stops_once_the_run_finished(ctx):
    panel = train_tab(ctx).monitor
    write_run(ctx, "done", "completed")
    drawn = train_follow.poll(ctx, panel, "done", -1, None)
    assert panel.timer not in drawn  # the last events are drawn first
    assert list(drawn[panel.loss]["loss"]) == [2.0, 1.0] and "completed" in drawn[panel.log]
    stopped = train_follow.poll(ctx, panel, "done", drawn[panel.seen], None)
    assert set(stopped) == {panel.timer, panel.watch, panel.also} and not active(stopped[panel.timer])  # still shown


def test_a_run_that_ends_is_listed_to_start_from_at_once(ctx):
    """SFT, then DPO from it on the same tab: the Start from run list names the run as the tab draws its end (it
    was listed only after a reload or another tab); a tick of a run still training leaves the list alone."""
    panel = train_tab(ctx).monitor
    write_run(ctx, "busy", "training")
    assert panel.start_run not in train_follow.poll(ctx, panel, "busy", -1, None)
    write_run(ctx, "sft", "completed")
    (ctx.runs.runs_dir / "sft" / "adapter").mkdir()
    (ctx.runs.runs_dir / "sft" / "adapter" / "adapter_config.json").write_text("{}")
    ctx.jobs.scan()  # the folder was there while it trained
    listed = train_follow.poll(ctx, panel, "sft", -1, None)[panel.start_run]["choices"]
    assert [value for _, value in listed] == ["", str(ctx.runs.runs_dir / "sft")]


def test_poll_keeps_ticking_while_the_run_trains(ctx):
    panel = train_tab(ctx).monitor
    write_run(ctx, "busy", "training")
    drawn = train_follow.poll(ctx, panel, "busy", -1, None)
    assert train_follow.poll(ctx, panel, "busy", drawn[panel.seen], None) == {panel.also: ""}


def test_poll_of_a_deleted_run_blanks_the_view_and_watches(ctx):
    panel = train_tab(ctx).monitor
    shown = train_follow.poll(ctx, panel, "gone", 3, None)
    assert (shown[panel.current], shown[panel.log], shown[panel.loss_colors]) == (None, "", {})
    assert not active(shown[panel.timer]) and active(shown[panel.watch])


def test_the_form_kept_in_the_browser_comes_back_and_anything_else_changes_nothing(ctx):
    """webui.tabs.train.remember.restore on page load: a kept config fills the form; no kept form, or one that no
    longer validates, skips every one of the form's outputs (an empty answer was one value for 48 outputs)."""
    from webui.tabs.train import remember

    tab = train_tab(ctx)
    outputs = tab.form_inputs()
    for kept in (None, "", "model: [not, a, config", "model: {name_or_path: x}\nmethod: {name: no-such-method}\n"):
        answer = remember.restore(ctx, tab, kept)
        assert set(answer) == set(outputs) and all(value == gr.skip() for value in answer.values()), kept
    data = ctx.uploads / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    kept = parse_config({"model": {"name_or_path": "tiny"}, "method": {"name": "ia3"}, "data": {"path": str(data)},
                         "train": {"max_steps": 7}, "output_dir": str(ctx.runs.runs_dir / "x")}).to_yaml()
    filled = remember.restore(ctx, tab, kept)
    assert filled[tab.method.name] == "ia3" and filled[tab.model.name] == "tiny"
    assert filled[tab.data.dataset]["value"] == str(data)
    assert remember.browser_secret(ctx.workspace) == remember.browser_secret(ctx.workspace)  # one per workspace


def test_a_blank_run_name_says_the_name_the_run_was_given(ctx, monkeypatch):
    """Issue 24 item 12: a blank name queued a run named by the date without saying so."""
    panel = train_tab(ctx).monitor
    monkeypatch.setattr(ctx.runs, "submit", lambda _config, name: (name or "20261205-031500-tiny-lora", False))
    monkeypatch.setattr(train_follow, "check_start", lambda *_: None)
    said = []
    monkeypatch.setattr(train_follow.gr, "Info", lambda text, **_: said.append(text))
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text('{"instruction": "a", "output": "b"}\n')
    args = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(forms.defaults())]
    shown = train_follow.start(ctx, panel, None, "   ", *args)
    assert shown[panel.current] == "20261205-031500-tiny-lora"
    assert len(said) == 1 and "20261205-031500-tiny-lora" in said[0] and "blank" in said[0] and "date" in said[0]
    train_follow.start(ctx, panel, None, "mine", *args)
    assert len(said) == 1  # a name typed in: nothing to say


def test_a_run_training_beside_the_followed_one_is_named(ctx, monkeypatch):
    """A `launch.py train` from a terminal starts beside the page's run: the tab follows one and names the other."""
    panel = train_tab(ctx).monitor
    write_run(ctx, "page-run", "training")
    monkeypatch.setattr(ctx.runs, "training", lambda: ["page-run", "cli-run"])
    drawn = train_follow.poll(ctx, panel, "page-run", -1, None)
    assert "`cli-run`" in drawn[panel.also] and "Runs tab" in drawn[panel.also]
    assert drawn[panel.also].split(":")[1].split("(")[0].strip() == "`cli-run`"  # the followed run is not "also"
    monkeypatch.setattr(ctx.runs, "training", lambda: ["page-run"])
    assert train_follow.poll(ctx, panel, "page-run", drawn[panel.seen], None) == {panel.also: ""}


def test_a_page_that_opens_while_two_runs_train_follows_the_one_it_started(ctx, monkeypatch):
    """Seen by hand (issue 24): with a terminal's run listed first, a page opened while both trained followed the
    terminal's run and named its own as the one 'from a terminal'."""
    from webui.jobs.scheduler import TRAIN

    monkeypatch.setattr(ctx.runs.scheduler, "holders", lambda _lane: [(TRAIN, "cli-run"), (TRAIN, "page-run")])
    monkeypatch.setattr(ctx.runs.scheduler, "launched", lambda path: path == ctx.runs.runs_dir / "page-run")
    assert ctx.runs.training() == ["page-run", "cli-run"] and ctx.runs.active() == "page-run"


def test_a_queued_run_names_the_run_it_waits_for():
    """The third and fourth Starts wait for the second and third, not all for the first."""
    assert train_follow.waits_for("second", ["second"], "first") == "first"
    assert train_follow.waits_for("third", ["second", "third"], "first") == "second"
    assert train_follow.waits_for("fourth", ["second", "third", "fourth"], "first") == "third"
    assert train_follow.waits_for("gone", [], "first") == "first"


def test_start_pressed_twice_with_a_blank_name_queues_one_run(ctx, monkeypatch):
    """Start pressed twice within a second (the first press answered at once): each press queued its own run, both
    named by the date, with the same settings. The second now says which run has them; a changed setting or a
    typed name starts another."""
    panel = train_tab(ctx).monitor
    monkeypatch.setattr(train_follow, "check_start", lambda *_: None)
    scheduler = ctx.runs.scheduler
    monkeypatch.setattr(scheduler, "tick", lambda: scheduler.scan() and [])  # nothing starts: the run stays queued
    monkeypatch.setattr(train_follow.gr, "Info", lambda *_, **__: None)
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text('{"instruction": "a", "output": "b"}\n')
    values = forms.defaults()
    args = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)]
    first = train_follow.start(ctx, panel, None, "", *args)[panel.current]
    assert ctx.runs.queued() == [first]
    with pytest.raises(gr.Error) as refused:
        train_follow.start(ctx, panel, None, "", *args)
    assert first in str(refused.value.message) and ctx.runs.queued() == [first]
    changed = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values({**values, SEED: 7})]
    assert train_follow.start(ctx, panel, None, "", *changed)[panel.current] != first  # another sample: queued
    assert train_follow.start(ctx, panel, None, "again", *args)[panel.current] == "again"  # named: queued


def test_a_queued_run_waits_for_the_run_queued_before_it(ctx, monkeypatch):
    """Two runs queued behind a training one: the second's message said it starts when the training run ends, but
    the run queued before it takes the device then."""
    for name in ("first", "second"):
        write_run(ctx, name, "queued")
    book = ctx.runs.scheduler.devices
    monkeypatch.setattr(ctx.runs, "queued", lambda: ["first", "second"])
    monkeypatch.setattr(book, "of", lambda _job: frozenset({"CPU"}))
    book.held = {"CPU": "training"}
    book.waits = {ctx.runs.runs_dir / name: ("CPU",) for name in ("first", "second")}
    assert (ctx.runs.ahead("first"), ctx.runs.ahead("second")) == ("training", "first")
