"""The Compare and Evaluate tabs' number boxes as gradio runs their events (Blocks.process_api on the page
webui.app.build_app builds, in this process): a number below a box's minimum or above its maximum is refused by
Start in one sentence naming the field and its range, the command line's sentence for that config key (engine/
config_read.value_problem), never gradio's unnamed "less than minimum" nor run with a changed value."""

from __future__ import annotations

import asyncio
from typing import Any

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from tests import run_folders
from tests.unit.test_train_events import event, sent
from webui.app import build_app
from webui.context import AppContext
from webui.tabs import compare as compare_tab
from webui.tabs import evaluate as evaluate_tab


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, AppContext]:
    ctx = AppContext.create(tmp_path_factory.mktemp("ws"))
    ctx.jobs.tick = lambda: []  # queued only: no engine process in tests/unit
    adapter = run_folders.write_run(ctx, "tuned", model="org/tiny") / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (ctx.uploads / "test.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    return build_app(ctx), ctx


def answered(app: Any, fn: Any, state: SessionState, **values: Any) -> Any:
    block_fn = event(app, fn)
    return asyncio.run(app.process_api(block_fn, sent(block_fn, **values), state))


def refusal(app: Any, fn: Any, state: SessionState, **values: Any) -> str:
    with pytest.raises(gr.Error) as raised:
        answered(app, fn, state, **values)
    return str(raised.value.message)


CUTOFF = "'train.cutoff_len' is 4: input should be greater than or equal to 8."
COMPARE = [  # elem_id, the value typed, the sentence Start says
    ("wb-compare-cutoff", 4, CUTOFF),
    ("wb-compare-steps", 0, "'train.max_steps' is 0: input should be greater than or equal to 1."),
    ("wb-compare-batch", -2, "'train.batch_size' is -2: input should be greater than or equal to 1."),
    ("wb-compare-val", -0.1, "'data.val_size' is -0.1: input should be greater than or equal to 0."),
    ("wb-compare-val", 1.5, "'data.val_size' is 1.5: input should be less than 1."),
]


@pytest.mark.parametrize(("box", "typed", "said"), COMPARE)
def test_a_compare_number_out_of_its_range_is_refused_naming_its_key(page, box, typed, said):
    app, ctx = page
    state = SessionState(app)
    listed = answered(app, compare_tab.opened, state)["data"][2]  # the page opened: the list, identity chosen
    chosen = {"wb-compare-data": listed["value"], box: typed}
    assert refusal(app, compare_tab.start, state, **chosen) == said
    assert ctx.compares.latest() is None  # nothing queued


def test_the_compare_cutoff_is_the_command_lines_sentence(tmp_path):
    from engine.config import ConfigError
    from engine.config_compare import parse_compare_config

    raw = {"model": {"name_or_path": "m"}, "data": {"path": str(tmp_path), "val_size": 0.2},
           "train": {"cutoff_len": 4}}
    with pytest.raises(ConfigError, match=CUTOFF.replace(".", r"\.")):
        parse_compare_config(raw)


EVALUATE = [
    ("wb-eval-rows", -3, "'max_rows' is -3: input should be greater than or equal to 1."),
    ("wb-eval-tokens", 0, "'sampling.max_new_tokens' is 0: input should be greater than or equal to 1."),
    ("wb-eval-tokens", 10 ** 6,
     "'sampling.max_new_tokens' is 1000000: input should be less than or equal to 8192."),
]


@pytest.mark.parametrize(("box", "typed", "said"), EVALUATE)
def test_an_evaluate_number_out_of_its_range_is_refused_naming_its_key(page, box, typed, said):
    app, ctx = page
    state = SessionState(app)
    answered(app, evaluate_tab.opened, state)  # the page opened: the models and test sets listed
    test_set = str(ctx.uploads / "test.jsonl")
    chosen = {"wb-eval-models": ["tuned"], "wb-eval-data": test_set, box: typed}
    assert refusal(app, evaluate_tab.start, state, **chosen) == said
    assert ctx.evals.latest() is None  # nothing queued


def test_the_compare_estimate_says_a_number_out_of_range_while_it_is_typed(page):
    """As the Train tab's config preview does: the estimate's place says the sentence Start would refuse with;
    a form that makes no comparison for another reason (no dataset) still shows nothing."""
    app, _ = page
    state = SessionState(app)
    listed = answered(app, compare_tab.opened, state)["data"][2]
    block_fn = next(block_fn for block_fn in app.fns.values() if block_fn.name == "estimate"
                    and any(getattr(block, "elem_id", None) == "wb-compare-cutoff" for block in block_fn.inputs))
    shown = asyncio.run(app.process_api(block_fn, sent(block_fn, **{"wb-compare-data": listed["value"],
                                                                    "wb-compare-cutoff": 4}), state))
    assert "wb-error" in shown["data"][0] and CUTOFF.replace("'", "&#x27;") in shown["data"][0]
    shown = asyncio.run(app.process_api(block_fn, sent(block_fn, **{"wb-compare-cutoff": 4}), state))
    assert shown["data"][0] == ""


def test_the_sentence_is_in_the_visitors_language(page):
    from types import SimpleNamespace

    _, ctx = page
    chinese = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={})
    dataset = str(next(ctx.assets.rglob("identity_alpaca.json")))
    with pytest.raises(gr.Error) as raised:
        compare_tab.start(ctx, "c", "org/tiny", dataset, ["lora"], compare_tab.preset_rows(), 60, 4, 4, 0.2,
                          request=chinese)
    said = str(raised.value.message)
    assert "'train.cutoff_len'" in said and "8" in said and "input should be" not in said, said
    with pytest.raises(gr.Error) as raised:
        evaluate_tab.start(ctx, ["tuned"], str(ctx.uploads / "test.jsonl"), None, 0, True, False, request=chinese)
    said = str(raised.value.message)
    assert "'sampling.max_new_tokens'" in said and "input should be" not in said, said


def test_a_presets_learning_rate_out_of_range_is_refused_naming_the_method_and_key(page, monkeypatch):
    """The presets table's numbers are the method's run config: Start refuses a learning rate of -1 with the
    sentence `launch.py train` gives that run, and queues nothing."""
    app, ctx = page
    monkeypatch.setattr(compare_tab, "check_compare_data", lambda *_: None)  # its inspect-data: a process
    rows = compare_tab.preset_rows()
    rows[0][1] = -1.0
    state = SessionState(app)
    listed = answered(app, compare_tab.opened, state)["data"][2]
    said = refusal(app, compare_tab.start, state, **{"wb-compare-data": listed["value"],
                                                     "wb-compare-presets": {"headers": compare_tab.PRESET_HEADERS,
                                                                            "data": rows}})
    assert said == (f"the {rows[0][0]} run of the comparison: 'train.learning_rate' is -1.0: input should be "
                    "greater than 0."), said
    assert ctx.compares.latest() is None
    from types import SimpleNamespace

    chinese = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={})
    with pytest.raises(gr.Error) as raised:
        compare_tab.start(ctx, "c", "org/tiny", listed["value"], [rows[0][0]], rows, 60, 4, 256, 0.2,
                          request=chinese)
    assert "'train.learning_rate'" in str(raised.value.message)
    assert "input should be" not in str(raised.value.message), raised.value.message


def test_numbers_in_the_schemas_range_go_through_unchanged(page):
    """Above the val box's 0.9 and below the schema's 1, the command line's range, a number is the config's as
    typed; the Evaluate tab's empty boxes are every row and the default tokens, as before."""
    _, ctx = page
    dataset = str(next(ctx.assets.rglob("identity_alpaca.json")))
    config = compare_tab.compare_config("org/tiny", dataset, ["lora"], compare_tab.preset_rows(), 7, 3, 9, 0.95)
    assert (config.data.val_size, config.train.max_steps, config.train.batch_size, config.train.cutoff_len) == (
        0.95, 7, 3, 9)
    config = ctx.evals.config(["tuned"], str(ctx.uploads / "test.jsonl"), ctx.runs.run_dir, None, 8192)
    assert (config.max_rows, config.sampling.max_new_tokens) == (None, 8192)


@pytest.mark.parametrize("typed", [0, -1])
def test_the_export_shard_size_below_zero_is_refused_naming_the_field(page, typed):
    """The Export tab's shard size reaches its handler as typed (its box had gradio's minimum of 0.1, whose
    unnamed "less than minimum" refusal came first) and is refused naming the field and the export's key; a small
    size above 0 (50 MB shards) is the engine's to take."""
    from webui.tabs import export as export_tab

    app, ctx = page
    box = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "wb-export-shard")
    assert box.preprocess(typed) == typed and box.preprocess(0.05) == 0.05
    with pytest.raises(gr.Error) as raised:
        export_tab.export(ctx, "tuned", "float16", typed)
    assert str(raised.value.message) == (f"Shard size (GB) (the export's max_shard_size) is {typed!r}: give a "
                                         "number of GB above 0, such as 2.")
