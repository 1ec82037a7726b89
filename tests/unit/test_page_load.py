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



def test_choosing_another_model_inspects_the_dataset_again(app):
    """The example is rendered with the chosen model's chat template and the token lengths are counted with its
    tokenizer: a new base model (its folder or hub id typed, a recent one picked) inspects again. Before, the page
    kept showing the first model's template (Phi-3 markers under a ChatML model) until the dataset changed."""
    inspections = [fn for fn in app.fns.values() if fn.fn is not None and pyinspect.unwrap(fn.fn) is train_data.inspect]
    # the inspection follows a relay in the browser on the form's triggers (webui.components.wiring.newest)
    relays = [app.fns[fn.trigger_after] for fn in inspections
              if fn.trigger_after is not None and app.fns[fn.trigger_after].fn is None]
    triggers = {(app.blocks[block].elem_id, event) for fn in relays for block, event in fn.targets
                if block in app.blocks}
    assert ("wb-model", "change") in triggers, sorted(triggers, key=str)


def test_the_opening_preview_waits_for_the_kept_form(app):
    """The config preview also writes the form the browser keeps (webui.tabs.train.remember): run on load beside the
    restore, it kept the page's default form, so a reload before the restored form's own preview came back (a
    page that gradio reloads itself after a restart of launch.py, with a run training beside it) lost the form."""
    from webui.tabs.train import devices as train_devices

    previews = [fn for fn in app.fns.values() if fn.fn is not None and pyinspect.unwrap(fn.fn) is train_devices.preview]
    assert previews and not any(event == "load" for fn in previews for _, event in fn.targets)
    after = [app.fns[fn.trigger_after].fn for fn in previews if fn.trigger_after is not None]
    assert [fn.__name__ for fn in after if fn is not None].count("restore") == 1


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


def test_the_inspections_answer_sends_the_mapping_only_where_it_changes():
    """The hidden data.replace JSON reports a change on every value it receives, starting the config preview and
    the estimate: an answer that keeps every filled placeholder leaves it alone; one that drops a placeholder the
    data no longer holds sends the mapping without it."""
    import gradio as gr

    with gr.Blocks():
        panel = build_placeholder_panel()
    report = {"rows": 2, "sample_rows": 2, "placeholders": [{"name": "name", "count": 2, "rows": 2}]}
    assert panel.mapping not in placeholder_view(panel, report, {"name": "Ada"}, None)
    assert placeholder_view(panel, report, {"name": "Ada", "gone": "x"}, None)[panel.mapping] == {"name": "Ada"}
