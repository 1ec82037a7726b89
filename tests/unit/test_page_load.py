"""What the page does when it opens: its load events (webui.app.build_app) inspect the dataset once, and the
inspection's first answer fires no change event of its own.

Before, a page open ran the dataset inspection ten times (counted by timing the server's handlers while pages
opened) and the browser redrew its 18 outputs (table, histogram, example, placeholder fields) each time: each of the
eight hidden placeholder fields started with the value None, the inspection's "" for it was a change, and its change
handler inspected again; and the load event inspected once more beside the inspection chained after restoring the
kept form."""

from __future__ import annotations

import inspect as pyinspect

import pytest

from webui.app import build_app
from webui.context import AppContext
from webui.tabs.train import data as train_data
from webui.tabs.train.placeholders import build_placeholder_panel, placeholder_view


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    return build_app(AppContext.create(tmp_path_factory.mktemp("ws")))


def on_opening(app) -> list[int]:
    """The page's load events and every event chained after them (.then, .success), in order."""
    chained: dict[int, list[int]] = {}
    for index, fn in app.fns.items():
        if fn.trigger_after is not None:
            chained.setdefault(fn.trigger_after, []).append(index)
    found = [index for index, fn in app.fns.items() if any(event == "load" for _, event in fn.targets)]
    for index in found:
        found += [after for after in chained.get(index, []) if after not in found]
    return found


def test_the_page_inspects_its_dataset_once_when_it_opens(app):
    inspections = [index for index in on_opening(app)
                   if app.fns[index].fn is not None and pyinspect.unwrap(app.fns[index].fn) is train_data.inspect]
    assert len(inspections) == 1, inspections
    restore = app.fns[app.fns[inspections[0]].trigger_after]  # after the kept form is back: the form's dataset
    assert restore.fn.__name__ == "restore"


@pytest.mark.parametrize("placeholders", [[], [{"name": "name", "count": 2, "rows": 2}]])
def test_the_inspections_answer_sets_no_placeholder_field_to_a_new_value(placeholders):
    """A field whose value the answer changes fires its change event, whose handler inspects again: every field
    starts with the value the answer gives it while nothing is typed ("")."""
    import gradio as gr

    with gr.Blocks():
        panel = build_placeholder_panel()
    report = {"rows": 2, "sample_rows": 2, "placeholders": placeholders}
    view = placeholder_view(panel, report, {}, None)
    for field in panel.fields:
        assert view[field]["value"] == field.value, (field.elem_id, field.value, view[field])



def test_the_opening_events_answer_directly_and_draw_no_progress(app):
    """Each load event queued (a join, then a stream of messages) and covered its outputs with a progress animation
    while it ran: the opening's 21 events cost Chromium about a fifth of its CPU and the server a quarter of its
    (README, "Opening the page"). Now only a generator, which streams, goes through the queue."""
    config = app.get_config_file()["dependencies"]
    loads = [index for index, fn in app.fns.items() if any(event == "load" for _, event in fn.targets)]
    assert len(loads) >= 15
    streamed = []
    for index in loads:
        fn, sent = app.fns[index], config[index]
        assert sent["show_progress"] == "hidden", fn.name
        if pyinspect.isgeneratorfunction(pyinspect.unwrap(fn.fn)):
            streamed.append(fn.name)
            assert sent["queue"] is not False, fn.name
        else:
            assert sent["queue"] is False, fn.name
    assert streamed == ["count_trainable"]  # the trainable count streams its answer as the engine gives it
