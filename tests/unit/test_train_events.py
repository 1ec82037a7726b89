"""The Train tab's events as gradio runs them (Blocks.process_api on the page webui.app.build_app builds, in this
process): what a value sent before another event changed the page does, and what one upload starts."""

from __future__ import annotations

import asyncio
import inspect as pyinspect
from typing import Any

import pytest
import yaml
from gradio.state_holder import SessionState

from webui.app import build_app
from webui.context import AppContext
from webui.tabs.train import devices as train_devices
from webui.tabs.train import handlers


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    return build_app(AppContext.create(tmp_path_factory.mktemp("ws")))


def triggers(app, block_fn: Any) -> set[tuple[str | None, str]]:
    """(elem_id, event) of what starts `block_fn`: its own triggers, or those of the browser relay it follows
    (webui.components.wiring.newest)."""
    if block_fn.trigger_after is not None and app.fns[block_fn.trigger_after].fn is None:
        block_fn = app.fns[block_fn.trigger_after]
    return {(getattr(app.blocks.get(block), "elem_id", None), name) for block, name in block_fn.targets}


def event(app, fn: Any, trigger: str | None = None) -> Any:
    """The page's event whose handler is `fn` (and, given, is triggered by the component with elem_id `trigger`)."""
    found = [block_fn for block_fn in app.fns.values() if block_fn.fn is not None
             and pyinspect.unwrap(block_fn.fn) is fn
             and (trigger is None or any(elem_id == trigger for elem_id, _ in triggers(app, block_fn)))]
    assert len(found) == 1, found
    return found[0]


def sent(block_fn: Any, **values: Any) -> list[Any]:
    """What the browser sends for the event's inputs: each widget's value as the page was built, `values` (by
    elem_id) replaced."""
    return [values[block.elem_id] if block.elem_id in values else None if callable(block.value) else block.value
            for block in block_fn.inputs]


def test_a_bits_value_sent_before_qlora_was_picked_is_read_as_qlora_reads_it(app):
    """Once: qlora picked right after a dataset change toasted "Value: 0 is not in the list of choices: [4, 8]".
    The change's config preview had left the browser with 16-bit (0) before the method's event gave the bits radio
    qlora's choices in this visit's session; gradio then refused the 0 before the preview's handler ran. Now the
    radio takes any value it offers for some method, and the form reads it as the chosen method does (4-bit)."""
    state = SessionState(app)
    method_change = event(app, handlers.method_visibility)
    asyncio.run(app.process_api(method_change, ["qlora", 0], state))
    bits = next(block for block in method_change.inputs if block.elem_id == "f-method-bits")
    assert [value for _, value in state[bits._id].choices] == [4, 8]  # the session's radio offers qlora's bits
    preview = event(app, train_devices.preview, "wb-dataset")  # the one a dataset change starts
    answer = asyncio.run(app.process_api(preview, sent(preview, **{"wb-method": "qlora", "f-method-bits": 0}), state))
    config = yaml.safe_load(answer["data"][0]["value"] if isinstance(answer["data"][0], dict) else answer["data"][0])
    assert config["method"]["name"] == "qlora" and config["method"]["bits"] == 4


def test_the_bits_radio_still_refuses_a_value_no_method_offers_and_other_radios_are_unchanged(app):
    import gradio as gr

    state = SessionState(app)
    preview = event(app, train_devices.preview, "wb-dataset")
    for wrong in ({"f-method-bits": 16}, {"f-ui-stop-by": "hours"}):
        with pytest.raises(gr.Error, match="is not in the list of choices"):
            asyncio.run(app.process_api(preview, sent(preview, **wrong), state))


def test_an_upload_changes_one_list_and_so_starts_one_inspection(app, tmp_path):
    """An upload chooses the file as the dataset and offers it in the more-datasets list too. The inspection starts
    on a change of either list; the more-datasets list gets new choices but keeps its value, which fires no change
    (counted in Chromium: one upload sent one inspection to the server), so one upload inspects once."""
    from webui.tabs.train import data as train_data

    inspection = event(app, train_data.inspect, "wb-dataset")
    starts = triggers(app, inspection)
    assert {("wb-dataset", "change"), ("wb-more-datasets", "change")} <= starts
    upload = event(app, handlers.upload_dataset)
    assert [block.elem_id for block in upload.outputs] == ["wb-upload", "wb-dataset", "wb-more-datasets"]
    file = tmp_path / "mine.jsonl"
    file.write_text('{"instruction": "q", "output": "a"}\n')
    ctx = AppContext.create(tmp_path / "ws")
    emptied, dataset, more = handlers.upload_dataset(ctx, str(file))
    assert emptied is None and dataset["value"].endswith("mine.jsonl")
    assert "value" not in more and dataset["value"] in [value for _, value in more["choices"]]


def test_a_cutoff_typed_below_its_minimum_is_told_each_time(app):
    """A cutoff typed below 8 is raised to 8 (the slider holds 8 to 8192; the command line refuses a config's 4 in
    a sentence naming train.cutoff_len), and the note says so. A click into the slider's box is a release too, of
    the number it held; under gradio's default for release ("once") the browser dropped the typed number's release
    while that one was on its way, and the cutoff became 8 without a word."""
    import warnings

    from gradio.events import EventData

    from webui.components.widgets import clamp_note

    note = event(app, clamp_note, "f-train-cutoff-len")
    assert note.trigger_mode == "multiple"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for typed in (512, 4):  # the click into the box, then the number typed
            asyncio.run(app.process_api(note, [], SessionState(app), event_data=EventData(None, typed)))
    assert [str(w.message) for w in said] == ["Cutoff length takes 8 to 8192: 4 was set to 8, which the summary, "
                                              "histogram and config now use."]


def test_a_cutoff_below_8_through_the_api_is_refused_in_the_command_lines_sentence(app, tmp_path):
    """The same rule as `launch.py train` on a config of cutoff_len 4: Start and Save through the page's API are
    refused with the schema's sentence naming train.cutoff_len (the slider had raised it to 8 without a word, and
    the run trained at 8); the config preview says it while the number is typed. The inspection measures the 8 the
    box shows."""
    import gradio as gr

    from engine.config import ConfigError, parse_config
    from webui.tabs.train import data as train_data

    said = "'train.cutoff_len' is 4: input should be greater than or equal to 8."
    with pytest.raises(ConfigError, match=said):  # the command line's reading of a config file
        parse_config({"model": {"name_or_path": "m"}, "data": {"path": str(tmp_path)}, "train": {"cutoff_len": 4}})
    for name in ("start", "save_config_clicked"):
        fn = next(fn for fn in app.fns.values() if fn.name == name)
        inputs = sent(fn, **{"f-train-cutoff-len": 4})
        inputs[0] = "" if name == "start" else "ok"  # the run's name; the saved config's name
        with pytest.raises(gr.Error, match=said.replace(".", r"\.")):
            asyncio.run(app.process_api(fn, inputs, SessionState(app)))
    preview = event(app, train_devices.preview, "wb-dataset")
    shown = asyncio.run(app.process_api(preview, sent(preview, **{"f-train-cutoff-len": 4}), SessionState(app)))
    assert said in str(shown["data"][0])
    assert [train_data.slider_cutoff(typed) for typed in (1, 4.0, 64, 10 ** 6, None)] == [8, 8, 64, 8192, None]
