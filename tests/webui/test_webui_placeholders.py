"""The Train tab's placeholder fields (webui/tabs/train/placeholders.py): data.replace goes form -> YAML -> form
unchanged, and the fields follow what the inspection found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.train_tab import train_tab
from webui.context import AppContext
from webui.forms import fields as ff
from webui.forms import mapping as forms
from webui.tabs.train import data as train_data
from webui.tabs.train import handlers as h
from webui.tabs.train.placeholders import MAX_FIELDS, placeholder_view

IDENTITY = [{"instruction": "Who are you?", "output": "I am {{name}}, an AI assistant developed by {{author}}."},
            {"instruction": "Your name?", "output": "You may call me {{name}}."}]
FILLED = {"name": "Aria", "author": "Ada Labs"}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> AppContext:
    return AppContext.create(tmp_path_factory.mktemp("ws"))


@pytest.fixture(scope="module")
def tab(ctx: AppContext):
    return train_tab(ctx)


@pytest.fixture(scope="module")
def identity(ctx: AppContext) -> Path:
    path = ctx.uploads / "identity.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(IDENTITY), encoding="utf-8")
    return path


def form_args(dataset: Path, values: forms.Values) -> list:
    return ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)]


def test_data_replace_round_trips_through_the_form_and_a_saved_yaml(ctx, tab, identity):
    values = {**forms.defaults(), ff.REPLACE: FILLED, ff.REASONING: "drop"}
    shown = h.preview(ctx, tab.config, "named", *form_args(identity, values))
    assert yaml.safe_load(shown[tab.config.yaml])["data"]["replace"] == FILLED
    assert yaml.safe_load(shown[tab.config.yaml])["data"]["reasoning"] == "drop"
    h.save_config(ctx, "named", *form_args(identity, values))
    loaded = h.load_saved_config(ctx, tab, str(ctx.configs / "named.yaml"))
    assert loaded[tab.data.placeholders.mapping] == FILLED
    assert loaded[tab.training.options[ff.REASONING]] == "drop"
    config = forms.to_config(values, model="tiny", data_path=str(identity), output_dir=str(ctx.runs.runs_dir / "x"))
    assert forms.from_config(config)[ff.REPLACE] == FILLED
    empty = h.preview(ctx, tab.config, "plain", *form_args(identity, forms.defaults()))
    assert yaml.safe_load(empty[tab.config.yaml])["data"]["replace"] == {}


def test_an_inspection_shows_a_field_for_each_placeholder(ctx, tab, identity):
    """Through the inspect handler as the page calls it (inspect-data runs): fields in order of first appearance,
    labelled and counted, holding the texts data.replace has for them; a text for a placeholder the whole file
    does not hold is dropped."""
    panel = tab.data.placeholders
    view = list(train_data.inspect(ctx, tab.data, "", str(identity), [], "auto", 512, "truncate", None,
                                   {"author": "Ada Labs", "gone": "x"}))[-1]
    assert view[panel.names] == ["name", "author"]
    assert view[panel.mapping] == {"author": "Ada Labs"}
    assert view[panel.box]["visible"] is True and "Placeholders" in view[panel.note]
    first, second, *rest = (view[field] for field in panel.fields)
    assert (first["label"], first["value"], first["visible"], first["info"]) == ("{{name}}", "", True,
                                                                                "rows: 2 · times: 2")
    assert (second["label"], second["value"], second["info"]) == ("{{author}}", "Ada Labs", "rows: 1 · times: 1")
    assert all(field["visible"] is False for field in rest)
    other = identity.with_name("other.json")
    other.write_text(json.dumps([{"instruction": "Where?", "output": "In {{city}}."}]), encoding="utf-8")
    two = list(train_data.inspect(ctx, tab.data, "", str(identity), [str(other)], "auto", 512, "truncate", None,
                                  {"city": "Paris"}))[-1]  # the page inspects the first dataset only
    assert two[panel.names] == ["name", "author", "city"] and panel.mapping not in two  # kept as it is


def test_a_sampled_inspection_keeps_the_texts_it_may_have_missed(tab):
    """Where the inspection read part of the file (or the first of several datasets), a data.replace text for a
    placeholder it did not see stays: the rest may hold it. Past MAX_FIELDS, the note says where the others are
    filled."""
    panel = tab.data.placeholders
    found = [{"name": f"p{index}", "count": 1, "rows": 1} for index in range(MAX_FIELDS)]
    report = {"placeholders": found, "rows": 5000, "sample_rows": 2000}
    view = placeholder_view(panel, report, {"later": "kept"}, None)
    assert view[panel.names] == [f"p{index}" for index in range(MAX_FIELDS)]  # the fields there are
    assert panel.mapping not in view  # kept as it is (an unchanged value is not sent)
    assert "first 2,000 rows" in view[panel.note] and "1 more have no field here" in view[panel.note]
    complete = placeholder_view(panel, {**report, "rows": 2000}, {"later": "kept"}, None)
    assert complete[panel.mapping] == {} and "more" not in complete[panel.note]
    first_of_two = placeholder_view(panel, {**report, "rows": 2000}, {"later": "kept"}, None, every_dataset=False)
    assert panel.mapping not in first_of_two  # kept: another dataset of the run may hold it
    none = placeholder_view(panel, {"placeholders": [], "rows": 3, "sample_rows": 3}, {}, None)
    assert none[panel.box]["visible"] is False and none[panel.names] == []
