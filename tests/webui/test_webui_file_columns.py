"""The Evaluate and Compare tabs' Columns groups (webui/tabs/file_columns.py): a test set or dataset file
whose columns match no format is mapped on the page, as the Train tab's dataset is, and the evaluation or the
comparison reads it so. Before, a `question,answer` CSV could be evaluated or compared only from the command line
(newuser5's finding): those tabs said to rename the columns."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
import yaml

from tests import run_folders
from webui.components.columns import build_columns_panel
from webui.context import AppContext
from webui.jobs.evals import validation_choice
from webui.tabs import compare, evaluate, file_columns
from webui.tabs.file_columns import chosen_file_view

MAPPED = {"prompt": "question", "response": "answer"}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> AppContext:
    return AppContext.create(tmp_path_factory.mktemp("ws"))


@pytest.fixture(scope="module")
def panel():
    with gr.Blocks():
        return build_columns_panel(file_columns.STAGE, prefix="wb-eval", maps_id="wb-eval-columns-map")


@pytest.fixture(scope="module")
def qa(ctx: AppContext) -> Path:
    path = ctx.uploads / "qa.csv"
    path.write_text("question,answer\nWho are you?,I am Aria.\nYour name?,Aria.\n", encoding="utf-8")
    return path


def offered(view: dict, panel, name: str) -> list[str]:
    return [value for _, value in view[panel.fields[name]]["choices"]]


def test_a_file_matching_no_format_opens_the_group_with_its_columns_and_says_why(ctx, panel, qa):
    view = chosen_file_view(ctx, panel, str(qa), {})
    assert view[panel.box]["visible"] is True and view[panel.box]["open"] is True
    assert offered(view, panel, "prompt") == ["", "question", "answer"]
    assert "match no format" in view[panel.note] and "under Columns" in view[panel.note], view[panel.note]
    assert view[panel.fields["chosen"]]["visible"] is False  # a preference stage's name: not an evaluation's


def test_the_picks_are_read_back_and_the_group_stays_closed_once_the_file_reads(ctx, panel, qa):
    view = chosen_file_view(ctx, panel, str(qa), {str(qa): {**MAPPED, "chosen": "answer"}})
    assert view[panel.box] == gr.update(visible=True)  # shown, not opened: nothing to answer
    assert view[panel.fields["prompt"]]["value"] == "question" and view[panel.fields["response"]]["value"] == "answer"
    assert "Which column" in view[panel.note]


def test_a_validation_split_or_no_choice_hides_the_group(ctx, panel):
    for test_set in (None, "", validation_choice("some-run")):
        assert chosen_file_view(ctx, panel, test_set, {}) == {panel.box: gr.update(visible=False)}


def test_start_queues_the_evaluation_with_the_picked_columns(ctx, qa):
    run_folders.write_run(ctx, "tuned", model="org/tiny")
    for part in ("adapter_config.json", "adapter_model.safetensors"):
        (ctx.runs.runs_dir / "tuned" / "adapter").mkdir(exist_ok=True)
        (ctx.runs.runs_dir / "tuned" / "adapter" / part).write_text("{}")
    with pytest.raises(gr.Error, match="under Columns"):  # unmapped: the tab's own words, not "rename them"
        evaluate.start(ctx, ["tuned"], str(qa), None, 8, False, False, {})
    evaluate.start(ctx, ["tuned"], str(qa), None, 8, False, False, {str(qa): {**MAPPED, "chosen": "answer"}})
    config = ctx.evals.latest().read_config()
    assert config.data.path == str(qa) and config.data.columns == MAPPED  # SFT's names only
    ctx.evals.stop(ctx.evals.latest())
    models, sets, *_, maps = evaluate.opened(ctx)  # a reload picks the evaluation's map again
    assert maps == {str(qa): MAPPED}


def test_an_older_reading_answering_after_a_newer_one_shows_nothing(ctx, panel, qa, monkeypatch):
    """Each pick reads the file again, as an event of its own: where the first pick's answer came back after the
    second pick's, it set the second dropdown back to (auto) while the map held the pick."""
    request = SimpleNamespace(session_hash="visitor", headers={}, cookies={})
    cache = file_columns.engine_cache(ctx.workspace)

    class Overtaken:  # the page's cache, with a newer pick of the same visitor arriving while it answers
        def answer(self, job, **options):
            try:
                return cache.answer(job, **options)
            finally:
                file_columns.READINGS.ticket("visitor")

    monkeypatch.setattr(file_columns, "engine_cache", lambda _workspace: Overtaken())
    for maps in ({}, {str(qa): MAPPED}):  # refused, and read
        view = chosen_file_view(ctx, panel, str(qa), maps, request)
        # every output skipped: gradio read an empty dict as one value for the group's outputs and raised
        # "didn't return enough output values"
        assert set(view) == set(panel.outputs) and all(update == gr.skip() for update in view.values())
    monkeypatch.undo()
    assert chosen_file_view(ctx, panel, str(qa), {str(qa): MAPPED}, request)[panel.box]["visible"]


def test_compare_queues_every_method_with_the_picked_columns(ctx, qa):
    """The Compare tab's group is the same one (its own elements); Start writes the picks into the comparison's
    config, which every method's run reads."""
    with gr.Blocks() as page:
        tab = compare.build_compare_tab(ctx, page)
    assert tab.columns.maps in tab.inputs() and tab.columns.fields["prompt"].elem_id == "wb-compare-column-prompt"
    chosen = [str(qa), ["lora"], compare.preset_rows(), 2, 1, 64, 0.5, False]
    with pytest.raises(gr.Error, match="under Columns"):
        compare.start(ctx, "qa", "org/tiny", *chosen, {})
    compare.start(ctx, "qa", "org/tiny", *chosen, {str(qa): MAPPED})
    job = ctx.compares.compare("qa")
    assert job.read_config().data.columns == MAPPED
    ctx.compares.stop(job)


def test_a_reload_fills_the_compare_form_with_the_newest_comparison(ctx, qa, tmp_path):
    """The tab showed the newest comparison's table under a form back at its defaults (as the Evaluate tab did
    before newuser5's fix), so Start after a reload began another comparison instead of going on with that one."""
    fresh = compare.opened(AppContext.create(tmp_path / "fresh"))
    assert all(update == gr.update() for index, update in enumerate(fresh) if index != 2)  # defaults stay
    assert "value" in fresh[2] and fresh[2]["choices"]  # the dataset list, the identity sample chosen
    rows = compare.preset_rows()
    rows[0][1] = 0.001  # lora's learning rate edited
    compare.start(ctx, "mine", "org/tiny", str(qa), ["ia3", "lora"], rows, 3, 2, 128, 0.5, False, {str(qa): MAPPED})
    ctx.compares.stop(ctx.compares.compare("mine"))
    name, model, dataset, methods, presets, steps, batch, cutoff, val, evaluate, maps = compare.opened(ctx)
    assert (name, dataset["value"], methods, steps, batch, cutoff, val, evaluate) == (
        "mine", str(qa), ["lora", "ia3"], 3, 2, 128, 0.5, False)
    assert model == "org/tiny"  # a hub id, as typed
    assert presets[0][:2] == ["lora", 0.001] and presets[1] == compare.preset_rows()[1]  # an unchosen method's own
    assert maps == {str(qa): MAPPED}
    # a comparison from the command line names its dataset as its config wrote it: the same file is picked
    written = ctx.compares.latest().path / "config.yaml"
    cli = yaml.safe_load(written.read_text())
    cli["data"]["path"] = str(ctx.workspace / "configs" / ".." / "uploads" / "qa.csv")
    written.write_text(yaml.safe_dump(cli))
    *_, maps = reloaded = compare.opened(ctx)
    assert reloaded[2]["value"] == str(qa) and maps == {str(qa): MAPPED}


def test_the_compare_tabs_base_model_is_the_train_tabs_list_where_a_hub_id_may_still_be_typed(ctx):
    """newuser2: Compare's Base model was a free-text box while the Train tab offers the bundled, recent and local
    models in a list: now it is the same list, and a value typed into it (a hub id, a path) is kept."""
    from webui.forms.models import model_choices

    with gr.Blocks() as page:
        tab = compare.build_compare_tab(ctx, page)
    assert isinstance(tab.model, gr.Dropdown) and tab.model.allow_custom_value
    listed = [value for _, value in tab.model.choices]
    assert listed == model_choices(ctx.workspace, ctx.assets) and tab.model.value in listed
    assert compare.estimate(ctx, "c", None, None, ["lora"], compare.preset_rows(), 2, 2, 64, 0.2) == ""  # cleared
