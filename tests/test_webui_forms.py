"""The form <-> RunConfig mapping (webui.forms): one place, driven by the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import METHOD_NAMES, ConfigError, MethodConfig, RunConfig, choices, load_config
from webui import forms


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    return path


def make(values: dict, data_file: Path, method: str = "lora") -> RunConfig:
    return forms.to_config({**forms.defaults(), **values}, model="tiny", data_path=str(data_file),
                           method=method, output_dir=str(data_file.parent / "run"))


def test_every_field_is_a_schema_field():
    for field in forms.FIELDS:
        if field.key != forms.STOP_BY:
            assert field.name in field.section.model_fields, field.key
            assert field.help, f"{field.key} has no help text"


def test_every_method_has_an_options_row():
    assert set(forms.METHOD_OPTIONS) == set(METHOD_NAMES)
    assert set(forms.visible_fields("lora")) == {f.key for f in forms.METHOD_FIELDS}


def test_widget_kinds_and_choices_come_from_the_schema():
    assert forms.BY_KEY["train.lr_scheduler_type"].kind == "dropdown"
    assert forms.BY_KEY["train.lr_scheduler_type"].choices == choices(type(RunConfig.model_fields["train"].default_factory()), "lr_scheduler_type")
    assert forms.BY_KEY["method.r"].kind == "slider"
    assert forms.BY_KEY["train.batch_size"].kind == "integer"
    assert forms.BY_KEY["train.batch_size"].minimum == 1
    assert forms.BY_KEY["train.learning_rate"].kind == "number"
    assert forms.BY_KEY["method.use_rslora"].kind == "checkbox"
    assert forms.BY_KEY["method.encoder_reparameterization_type"].choices == choices(MethodConfig, "encoder_reparameterization_type")


def test_defaults_make_a_valid_lora_config(data_file):
    config = make({}, data_file)
    assert config.method.name == "lora"
    assert config.train.max_steps is None
    assert config.data.path == str(data_file)
    assert config.method.target_modules == "all-linear"


def test_numbers_are_typed_and_steps_mode(data_file):
    config = make({forms.STOP_BY: "steps", "train.max_steps": 7.0, "method.r": 16.0, "train.batch_size": 2.0,
                   "train.learning_rate": 1e-3, "method.target_modules": "q_proj, v_proj", "method.bits": 8},
                  data_file)
    assert config.train.max_steps == 7 and isinstance(config.train.max_steps, int)
    assert config.method.r == 16 and isinstance(config.method.r, int)
    assert config.train.batch_size == 2
    assert config.train.learning_rate == pytest.approx(1e-3)
    assert config.method.target_modules == ["q_proj", "v_proj"]
    assert config.method.bits == 8


def test_options_of_other_methods_keep_their_defaults(data_file):
    config = make({"method.r": 64, "method.num_virtual_tokens": 5, "method.bits": 4}, data_file, method="prefix")
    assert config.method.num_virtual_tokens == 5
    assert config.method.r == MethodConfig().r
    assert config.method.bits is None  # a hidden widget's value never reaches the config


def test_round_trip_through_yaml(data_file):
    config = make({forms.STOP_BY: "steps", "train.max_steps": 3, "method.r": 4, "method.bits": 4}, data_file,
                  method="qlora")
    values = forms.from_config(config)
    assert values[forms.STOP_BY] == "steps" and values["method.bits"] == 4
    again = forms.to_config(values, model=config.model.name_or_path, data_path=config.data.path,
                            method=config.method.name, output_dir=config.output_dir)
    assert again.to_yaml() == config.to_yaml()


def test_issues_are_sentences(data_file):
    with pytest.raises(ConfigError) as error:
        make({"method.target_modules": " , "}, data_file, method="lora")
    assert any("target_modules" in issue for issue in error.value.issues)
    with pytest.raises(ConfigError) as error:
        forms.to_config(forms.defaults(), model="m", data_path=str(data_file.parent / "missing.jsonl"),
                        output_dir=str(data_file.parent / "run"))
    assert "does not exist" in " ".join(error.value.issues)


def test_save_form_to_yaml_and_load_it_back(tmp_path: Path, data_file: Path):
    from webui.context import AppContext
    from webui.tabs import train_handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    values = {**forms.defaults(), forms.STOP_BY: "steps", "train.max_steps": 5, "method.num_virtual_tokens": 7}
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text(data_file.read_text())
    args = ["tiny", str(dataset), "alpaca", "prompt", *[values[k] for k in forms.FIELD_KEYS]]
    yaml_text, command = h.preview(ctx, "exp1", *args)
    assert "num_virtual_tokens: 7" in yaml_text
    h.save_config(ctx, "exp1", *args)
    loaded = h.load_saved_config(ctx, str(ctx.configs / "exp1.yaml"))
    bits = loaded[4 + forms.FIELD_KEYS.index("method.bits")]
    assert [value for _, value in bits["choices"]] == list(forms.bits_choices("prompt"))  # with the method's choices
    loaded[4 + forms.FIELD_KEYS.index("method.bits")] = bits["value"]
    assert loaded[0] == "tiny" and loaded[1]["value"] == str(dataset) and loaded[2:4] == ["alpaca", "prompt"]
    assert dict(zip(forms.FIELD_KEYS, loaded[4:])) == {**values, "train.epochs": loaded[4 + forms.FIELD_KEYS.index("train.epochs")]}
    with pytest.raises(Exception, match="outside the workspace"):
        h.load_saved_config(ctx, "/etc/passwd")


def test_preview_command_names_a_file_holding_the_preview(tmp_path: Path, data_file: Path):
    """The command beside the config preview works when pasted: the file it names exists and holds exactly the
    previewed YAML, whose output_dir is a real run folder named after the config (no NEW_RUN placeholder)."""
    from webui.context import AppContext
    from webui.tabs import train_handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text(data_file.read_text())
    values = {**forms.defaults(), forms.STOP_BY: "steps", "train.max_steps": 2}
    args = ["tiny", str(dataset), "auto", "lora", *[values[k] for k in forms.FIELD_KEYS]]
    yaml_text, command = h.preview(ctx, "exp-2", *args)
    program, path = command.rsplit(" ", 1)
    assert program == "python launch.py train"
    assert Path(path).read_text(encoding="utf-8") == yaml_text
    assert Path(path).parent == ctx.configs / forms.PREVIEW_DIR  # saved configs in configs/ are never overwritten
    assert load_config(path).output_dir == str(ctx.runs.runs_dir / "exp-2")
    assert "NEW_RUN" not in yaml_text
    values["method.r"] = 4
    other_yaml, other_command = h.preview(ctx, "exp-2", *["tiny", str(dataset), "auto", "lora",
                                                          *[values[k] for k in forms.FIELD_KEYS]])
    assert other_command != command and Path(path).read_text(encoding="utf-8") == yaml_text  # one file per config
    assert h.config_choices(ctx) == []  # the preview files are not offered as saved configs


@pytest.mark.parametrize("method, chosen, shown", [
    ("qlora", 0, 4),  # qlora loads 4-bit: its radio never says 16-bit
    ("qlora", 8, 8),
    ("lora", 0, 0),
    ("dora", 8, 8),
    ("lora", 4, 4),
])
def test_bits_radio_shows_what_the_run_loads(data_file, method, chosen, shown):
    from webui.tabs import train_handlers as h

    assert forms.bits_for(method, chosen) == shown
    assert shown in forms.bits_choices(method)
    assert (0 in forms.bits_choices(method)) == (method != "qlora")
    update = h.method_visibility(method, chosen)[forms.FIELD_KEYS.index("method.bits")]
    assert update["value"] == shown and [value for _, value in update["choices"]] == list(forms.bits_choices(method))
    config = make({"method.bits": chosen}, data_file, method=method)
    assert (config.method.effective_bits or 0) == shown  # the YAML and the run agree with the radio
    assert forms.from_config(config)["method.bits"] == shown


def test_qlora_config_without_bits_loads_as_4_bit(data_file):
    config = make({}, data_file, method="qlora").model_copy(
        update={"method": MethodConfig(name="qlora", bits=None)})
    assert forms.from_config(config)["method.bits"] == 4


def test_method_rows_place_every_option_once_and_never_more_than_four():
    placed = [key for row in forms.METHOD_ROWS for key in row]
    assert sorted(placed) == sorted(f.key for f in forms.METHOD_FIELDS)
    for method in METHOD_NAMES:
        shown = forms.visible_fields(method)
        for row in forms.METHOD_ROWS:
            assert sum(shown[key] for key in row) <= 4, (method, row)


def test_count_fields_are_method_options():
    assert set(forms.COUNT_FIELDS) <= {f.key for f in forms.METHOD_FIELDS}
