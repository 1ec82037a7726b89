"""The Train tab's Columns group (webui.forms.columns, webui.components.columns): the form's column maps <-> the
config's data.columns (one dataset) or each dataset's own columns (several), through the handlers as the page calls
them; an odd-columns file read in-process with and without a map; the refusal that opens the group. In-process:
no engine process, no page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config import DataConfig, load_config
from engine.jobs.failures import DataError
from engine.sentences import Sentence
from tests.train_tab import train_tab
from webui.forms import columns as fc
from webui.forms import fields as ff
from webui.forms import mapping as forms

ODD = [{"question": "What is 2 + 2?", "answer": "4"}, {"question": "Capital of France?", "answer": "Paris"},
       {"question": "Colour of the sky?", "answer": "Blue"}]
PAIRS = [{"question": "Say hi.", "better": "Hello!", "worse": "Go away."}] * 2


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def config_of(maps: dict, data_path, tmp_path: Path, stage: str = "sft"):
    values = {**forms.defaults(), ff.COLUMNS: maps, ff.STAGE: stage}
    return forms.to_config(values, model="tiny", data_path=data_path, output_dir=str(tmp_path / "runs" / "r"))


def test_one_datasets_map_is_data_columns_and_comes_back(tmp_path: Path):
    odd = write(tmp_path / "odd.json", ODD)
    picked = {str(odd): {"prompt": "question", "response": "answer", "system": fc.AUTO}}  # (auto): not mapped
    config = config_of(picked, str(odd), tmp_path)
    assert config.data.columns == {"prompt": "question", "response": "answer"} and config.data.path == str(odd)
    assert yaml.safe_load(config.to_yaml())["data"]["columns"] == {"prompt": "question", "response": "answer"}
    assert forms.from_config(config)[ff.COLUMNS] == {str(odd): {"prompt": "question", "response": "answer"}}
    assert config_of({}, str(odd), tmp_path).data.columns == {}  # nothing picked: no map
    assert config_of({"/elsewhere.json": {"prompt": "q"}}, str(odd), tmp_path).data.columns == {}  # another file's


def test_several_datasets_keep_each_ones_own_map_through_a_saved_yaml(tmp_path: Path):
    """With several datasets a map is its dataset's own (an item {path, columns}): it never reaches the other file;
    a YAML whose data.columns applies to every item comes back with each item's map, training the same."""
    odd, plain = write(tmp_path / "odd.json", ODD), write(tmp_path / "plain.json", [{"text": "hello"}])
    config = config_of({str(odd): {"prompt": "question", "response": "answer"}}, [str(plain), str(odd)], tmp_path)
    assert config.data.columns == {}
    assert [(source.path, source.columns) for source in config.data.sources()] == [
        (str(plain), {}), (str(odd), {"prompt": "question", "response": "answer"})]
    saved = tmp_path / "saved.yaml"
    saved.write_text(config.to_yaml(), encoding="utf-8")
    written = yaml.safe_load(saved.read_text())["data"]["path"]
    assert written == [str(plain), {"path": str(odd), "columns": {"prompt": "question", "response": "answer"}}]
    back = forms.from_config(load_config(saved))
    again = config_of(back[ff.COLUMNS], [str(plain), str(odd)], tmp_path)
    assert again.data.sources() == config.data.sources()

    every = DataConfig(path=[str(odd), str(odd.with_name("odd2.json"))], columns={"prompt": "question"})
    maps = fc.column_maps(every)
    assert maps == {str(odd): {"prompt": "question"}, str(odd.with_name("odd2.json")): {"prompt": "question"}}
    assert fc.data_columns(maps, [str(odd), str(odd.with_name("odd2.json"))], "sft")[1] == [
        {"path": str(odd), "columns": {"prompt": "question"}},
        {"path": str(odd.with_name("odd2.json")), "columns": {"prompt": "question"}}]


def test_only_the_stages_standard_names_are_written_and_shown(tmp_path: Path):
    pairs = write(tmp_path / "pairs.json", PAIRS)
    picked = {str(pairs): {"prompt": "question", "chosen": "better", "rejected": "worse", "response": "better"}}
    assert config_of(picked, str(pairs), tmp_path, "dpo").data.columns == {
        "prompt": "question", "chosen": "better", "rejected": "worse"}  # response is SFT's: its dropdown is hidden
    assert config_of(picked, str(pairs), tmp_path, "sft").data.columns == {"prompt": "question", "response": "better"}
    dpo, sft = fc.shown_names("dpo"), fc.shown_names("sft")
    assert dpo["chosen"] and dpo["label"] and not dpo["response"]
    assert sft["response"] and sft["instruction"] and not sft["chosen"]
    assert {name for name, shown in dpo.items() if shown} | {name for name, shown in sft.items() if shown} == set(
        fc.NAMES)  # every dropdown shows under some stage


def test_a_value_that_is_no_map_is_the_schemas_sentence_not_dropped(tmp_path: Path):
    from engine.config import ConfigError

    odd = write(tmp_path / "odd.json", ODD)
    with pytest.raises(ConfigError, match="columns"):
        config_of({str(odd): {"prompt": 3}}, str(odd), tmp_path)
    with pytest.raises(ConfigError, match="columns"):
        config_of(["prompt"], str(odd), tmp_path)


def test_an_odd_file_inspected_in_process_has_a_format_once_mapped(tmp_path: Path):
    """Engine-free (the inspection's own functions, in this process): the odd file is refused with the sentence
    whose values name its columns (what the page offers); mapped, it is prompt_completion with every row; a pairs
    file of odd names mapped reads as pairs, reporting the file's own columns for the dropdowns."""
    from engine.cli.inspect_data import _inspect, _parser
    from engine.data.pipeline import inspect_dataset

    odd = write(tmp_path / "odd.json", ODD)
    with pytest.raises(DataError) as refused:
        inspect_dataset(DataConfig(path=str(odd)))
    assert refused.value.sentence.key == "engine.data.no_format"
    assert fc.refused_columns(refused.value.sentence) == ["question", "answer"]
    half = {"prompt": "question"}  # one pick made: still no format, the rows' columns named as mapped
    with pytest.raises(DataError) as refused:
        inspect_dataset(DataConfig(path=str(odd), columns=half))
    assert refused.value.sentence.values["columns"] == "prompt, answer"  # where question stood
    assert fc.refused_columns(refused.value.sentence, half) == ["question", "answer"]  # the file's, in its order
    with pytest.raises(DataError) as refused:
        inspect_dataset(DataConfig(path=str(odd), columns={"prompt": "question", "response": "gone"}))
    assert fc.refused_columns(refused.value.sentence, {"prompt": "question"}) == ["question", "answer"]
    comma = write(tmp_path / "comma.json", [{"question, short": "q", "answer": "a"}])
    with pytest.raises(DataError) as refused:
        inspect_dataset(DataConfig(path=str(comma)))
    crossed = Sentence.of(json.loads(json.dumps(refused.value.sentence.record())))  # as the page reads it back
    assert fc.refused_columns(crossed) == ["question, short", "answer"]  # a name holding ", " stays one column
    report = inspect_dataset(DataConfig(path=str(odd), columns={"prompt": "question", "response": "answer"}))
    assert (report["format"], report["rows"], fc.file_columns(report)) == ("prompt_completion", 3,
                                                                          ["question", "answer"])

    pairs = write(tmp_path / "pairs.json", PAIRS)
    columns = {"prompt": "question", "chosen": "better", "rejected": "worse"}
    args = _parser().parse_args(["--data", str(pairs)])
    shown = _inspect(DataConfig(path=str(pairs), columns=columns), args)
    assert shown["format"].startswith("preference") and shown["rows"] == 2, shown
    assert fc.file_columns(shown) == ["question", "better", "worse"]


def test_the_refusal_opens_the_group_with_the_files_columns_and_points_at_it(tmp_path: Path):
    """The engine's no-format sentence, as an inspection's failure reaches the page: the tab says it pointing at
    Columns (the CLI's words stay the engine's), opens the group, and each dropdown offers (auto) and the columns,
    holding the pick; the stage decides which dropdowns show. Another refusal leaves the group hidden."""
    from engine.sentences import said
    from webui.components.columns import page_reason, refusal_view
    from webui.context import AppContext
    from webui.jobs.commands import EngineCommandError

    panel = train_tab(AppContext.create(tmp_path / "ws")).data.columns
    sentence = said("engine.data.no_format", name="odd.json", columns="question, answer", expected="...",
                    file_columns=["question", "answer"])
    assert "data.columns" in sentence
    text, view = refusal_view(panel, str(tmp_path / "odd.json"), {"prompt": "question"}, "sft",
                              EngineCommandError(sentence), None)
    assert "under Columns" in text and "data.columns" not in text and "question, answer" in text
    assert page_reason(sentence, None) == text
    assert view[panel.box]["visible"] is True and view[panel.box]["open"] is True
    assert "odd.json" in view[panel.note]
    prompt, response, chosen = (view[panel.fields[name]] for name in ("prompt", "response", "chosen"))
    assert prompt["choices"] == [("(auto)", ""), ("question", "question"), ("answer", "answer")]
    assert (prompt["value"], response["value"], prompt["visible"], chosen["visible"]) == ("question", "", True, False)
    other = said("engine.data.empty", name="odd.json")
    text, view = refusal_view(panel, "odd.json", {}, "sft", EngineCommandError(other), None)
    assert text == str(other) and view[panel.box]["visible"] is False
    assert page_reason(other, None) is other


def test_the_form_keys_each_map_by_the_dataset_the_engine_reads(tmp_path: Path):
    """Through the handlers as the page calls them: the maps the dropdowns keep (keyed by the dataset dropdown's
    value) become data.columns; a saved config loads them back keyed the same, and previews the same YAML."""
    from webui.context import AppContext
    from webui.tabs.train import handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    tab = train_tab(ctx)
    odd = write(ctx.uploads / "odd.json", ODD)
    values = {**forms.defaults(), ff.COLUMNS: {str(odd): {"prompt": "question", "response": "answer"}}}
    args = ["tiny", str(odd), [], "auto", "lora", *forms.widget_values(values)]
    shown = h.preview(ctx, tab.config, "mapped", *args)[tab.config.yaml]
    assert yaml.safe_load(shown)["data"]["columns"] == {"prompt": "question", "response": "answer"}, shown
    h.save_config(ctx, "mapped", *args)
    loaded = h.load_saved_config(ctx, tab, str(ctx.configs / "mapped.yaml"))
    assert loaded[tab.data.columns.maps] == {str(odd): {"prompt": "question", "response": "answer"}}
    again = [value["value"] if isinstance(value, dict) and value.get("__type__") == "update" else value
             for value in (loaded[widget] for widget in tab.form_inputs())]
    assert h.preview(ctx, tab.config, "mapped", *again)[tab.config.yaml] == shown
