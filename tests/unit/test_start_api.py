"""Issue 24 item 12, through the page's API as a script (or a hostile page) calls it: values the browser's boxes
never send (`epochs: "ten"`, data.replace as a list, NaN), an invalid config name and a NUL byte in a name each
get one sentence naming the key or the box, never gradio's bare "Error" (its Number checks a string against its
minimum and raises a TypeError whose text it hides). The page is built in-process and its events are called
with gradio's own preprocessing (Blocks.process_api); no engine process is started."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from webui.app import build_app
from webui.context import AppContext
from webui.tabs import export as export_tab


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[gr.Blocks, Path]:
    workspace = tmp_path_factory.mktemp("api") / "ws"
    return build_app(AppContext.create(workspace)), workspace


def call(app: gr.Blocks, name: str, changes: dict[str, Any], first: Any = None) -> str:
    """Call event `name` (its handler's name) with each input's own value but `changes` (by elem_id) and, when
    given, `first` as the first input; the sentence it refuses with."""
    fn = next(fn for fn in app.fns.values() if fn.name == name)
    values = [changes.get(c.elem_id, None if callable(c.value) else c.value) for c in fn.inputs]
    if first is not None:
        values[0] = first
    with pytest.raises(gr.Error) as refused:
        asyncio.run(app.process_api(block_fn=fn, inputs=values, state=SessionState(app), request=None))
    return str(refused.value.message)


@pytest.mark.parametrize(("changes", "said"), [
    ({"f-train-epochs": "ten"}, "'train.epochs' is 'ten': input should be a valid number"),
    ({"f-train-cutoff-len": "ten"}, "'train.cutoff_len' is 'ten': input should be a valid integer"),  # a slider
    ({"f-data-replace": ["a"]}, "'data.replace' is ['a']: input should be a valid dictionary"),
    ({"f-data-columns": ["a"]}, "'data.columns' is ['a']: input should be a valid dictionary"),
    ({"f-train-learning-rate": float("nan")}, "train.learning_rate"),
    ({"wb-model": "tiny\0model"}, "'tiny\\x00model' holds a NUL byte"),
], ids=["epochs-ten", "slider-ten", "replace-list", "columns-list", "nan", "nul-model"])
def test_start_through_the_api_refuses_a_wrong_value_with_a_sentence_naming_it(page, changes, said):
    app, workspace = page
    assert said in call(app, "start", changes)
    assert not any((workspace / "runs").glob("*"))  # nothing queued


def test_save_refuses_an_invalid_name_or_a_nul_byte_with_a_sentence(page):
    app, workspace = page
    for name in ("../x", "my\0run"):
        assert "is not a valid name: use letters, digits" in call(app, "save_config_clicked", {}, first=name)
    assert "holds a NUL byte" in call(app, "save_config_clicked", {"wb-model": "m\0"}, first="ok")
    assert not any((workspace / "configs").glob("*.yaml"))


def test_export_refuses_a_nan_shard_size_naming_the_key(page):
    app, workspace = page
    fn = next(fn for fn in app.fns.values() if fn.name == "export")
    run, _, shard = fn.inputs
    assert shard.preprocess(float("nan")) != shard.preprocess(2)  # NaN passes gradio's bounds check: Export says why
    ctx = AppContext.create(workspace)
    with pytest.raises(gr.Error) as refused:
        export_tab.export(ctx, "some-run", "float16", float("nan"))
    assert refused.value.message == ("Shard size (GB) (the export's max_shard_size) is nan: give a number of GB "
                                     "above 0, such as 2.")
    assert not shard.elem_id.startswith("f-")  # not a form field: the box itself refuses a string, naming its label
    with pytest.raises(gr.Error) as refused:
        shard.preprocess("ten")
    assert refused.value.message == "Shard size (GB) takes a number, not 'ten': type a number."
    assert not any((workspace / "exports").glob("*"))
