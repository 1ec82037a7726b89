"""RunConfig: the contract keys, every problem at once, relative paths, choices for the UI; `plan`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from engine.config import (
    METHOD_NAMES,
    ConfigError,
    MethodConfig,
    TrainConfig,
    choices,
    field_help,
    load_config,
    parse_config,
)
from tests.cli import write_rows


def contract_config(tmp_path: Path) -> dict:
    write_rows(tmp_path / "data.json", [{"instruction": "a", "output": "b"}])
    return {
        "model": {"name_or_path": "org/model"},
        "method": {"name": "qlora", "r": 16, "lora_alpha": 32, "lora_dropout": 0.1,
                   "target_modules": ["q_proj", "v_proj"], "bits": 4},
        "data": {"path": "data.json", "format": "alpaca"},
        "train": {"max_steps": 10, "epochs": 2, "learning_rate": 1e-4, "batch_size": 2, "cutoff_len": 256},
        "output_dir": "runs/one",
    }


def test_contract_keys_load_and_relative_paths_follow_the_config_file(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(contract_config(tmp_path)))
    config = load_config(tmp_path / "run.yaml")
    assert config.method.r == 16 and config.method.target_modules == ["q_proj", "v_proj"]
    assert config.train.max_steps == 10 and config.train.cutoff_len == 256
    assert config.data.path == str(tmp_path / "data.json")
    assert config.output_dir == str(tmp_path / "runs/one")


def test_every_problem_is_reported_at_once_as_sentences(tmp_path):
    raw = contract_config(tmp_path)
    raw["method"]["name"] = "lora-plus"
    raw["train"]["learning_rte"] = 1e-4
    raw["train"]["batch_size"] = 0
    del raw["model"]["name_or_path"]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path)
    issues = caught.value.issues
    assert len(issues) == 4, issues
    assert "Unknown key 'train.learning_rte': remove it or check its spelling." in issues
    assert "Missing key 'model.name_or_path': it is required." in issues
    assert any(i.startswith("'method.name' is 'lora-plus'") and "'lora'" in i for i in issues)


def test_semantic_problems(tmp_path):
    raw = contract_config(tmp_path)
    raw["method"] = {"name": "full", "bits": 4}
    raw["data"]["path"] = "missing.json"
    raw["train"]["eval_steps"] = 5
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path)
    text = " ".join(caught.value.issues)
    assert "quantized weights cannot be trained" in text
    assert "missing.json does not exist" in text
    assert "set data.val_size above 0" in text


def test_qlora_means_4_bit_unless_told_8():
    assert MethodConfig(name="qlora").effective_bits == 4
    assert MethodConfig(name="qlora", bits=8).effective_bits == 8
    assert MethodConfig(name="lora").effective_bits is None


def test_choices_and_help_come_from_the_schema():
    assert choices(MethodConfig, "name") == METHOD_NAMES
    assert choices(MethodConfig, "bits") == (4, 8)
    assert "linear" in choices(TrainConfig, "lr_scheduler_type")
    assert field_help(MethodConfig, "r").startswith("LoRA rank")


def test_yaml_round_trip(tmp_path):
    config = parse_config(contract_config(tmp_path), base_dir=tmp_path)
    again = parse_config(yaml.safe_load(config.to_yaml()))
    assert again == config
    assert isinstance(parse_config(yaml.safe_load(config.with_versions().to_yaml())).versions["torch"], str)


def test_a_relative_model_folder_next_to_the_config_resolves_and_a_hub_id_stays(tmp_path):
    raw = contract_config(tmp_path)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.json").write_text("{}")
    raw["model"]["name_or_path"] = "models/mine"
    assert parse_config(raw, base_dir=tmp_path).model.name_or_path == str(tmp_path / "models" / "mine")
    raw["model"]["name_or_path"] = "org/model"
    assert parse_config(raw, base_dir=tmp_path).model.name_or_path == "org/model"


def test_yaml_on_and_off_mean_what_they_say(tmp_path):
    raw = contract_config(tmp_path)
    for text, expected in (("on", "on"), ("off", "off"), ("auto", "auto")):
        raw["train"]["packing"] = yaml.safe_load(f"v: {text}")["v"]
        assert parse_config(raw, base_dir=tmp_path).train.packing == expected


def test_data_path_takes_a_list_whose_items_may_carry_their_own_settings(tmp_path):
    """One string means what it always meant; a list names several datasets, relative to the config file's folder,
    an item a mapping with its own format, columns, split and fraction; a hub dataset id is left as it is."""
    write_rows(tmp_path / "b.json", [{"q": "a", "a": "b"}])
    raw = contract_config(tmp_path)
    raw["data"] = {"path": ["data.json", {"path": "b.json", "format": "prompt_completion",
                                          "columns": {"prompt": "q", "completion": "a"}, "fraction": 0.5},
                            "org/some-dataset"], "mix": "interleave", "split": "test"}
    config = parse_config(raw, base_dir=tmp_path)
    sources = config.data.sources()
    assert [s.path for s in sources] == [str(tmp_path / "data.json"), str(tmp_path / "b.json"), "org/some-dataset"]
    assert [s.format for s in sources] == ["auto", "prompt_completion", "auto"]  # data.format where an item has none
    assert [s.columns for s in sources] == [{}, {"prompt": "q", "completion": "a"}, {}]
    assert [s.fraction for s in sources] == [1.0, 0.5, 1.0] and {s.split for s in sources} == {"test"}
    assert config.data.name == "data.json + b.json + org/some-dataset"
    written = yaml.safe_load(config.to_yaml())["data"]
    assert written["path"] == [str(tmp_path / "data.json"), {"path": str(tmp_path / "b.json"),
                               "format": "prompt_completion", "columns": {"prompt": "q", "completion": "a"},
                               "fraction": 0.5}, "org/some-dataset"]  # an item writes only its own settings
    assert parse_config(yaml.safe_load(config.to_yaml())) == config
    one = parse_config(contract_config(tmp_path), base_dir=tmp_path)
    assert yaml.safe_load(one.to_yaml())["data"]["path"] == str(tmp_path / "data.json")  # one dataset: a string
    assert [s.path for s in one.data.sources()] == [one.data.path] and one.data.name == "data.json"


def test_every_problem_of_a_data_path_list_is_a_sentence_at_once(tmp_path):
    raw = contract_config(tmp_path)
    raw["data"]["path"] = ["data.json", {"path": "data.json"}, "", "missing.jsonl", "../nowhere/x",
                           {"path": "data.json", "fraction": 0}, {"path": "data.json", "fromat": "alpaca"},
                           {"format": "openai"}, ["nested.json"]]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path)
    assert caught.value.issues == [
        "'fraction' in data.path item 6 is 0: input should be greater than 0.",
        "Unknown key 'fromat' in data.path item 7: remove it or check its spelling.",
        "Missing key 'path' in data.path item 8: it is required.",
        "data.path item 9 is ['nested.json']: write each item as a path or as a mapping "
        "{path, format, columns, split, fraction}.",
    ]  # the schema's problems first (nothing else is checked until the shape is right)
    del raw["data"]["path"][5:]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path)
    assert caught.value.issues == [
        f"data.path item 2 names {tmp_path / 'data.json'} again: list each dataset once (a fraction above 1 "
        "repeats rows).",
        "data.path item 3 is empty: name a dataset file, a dataset folder or a hub dataset id.",
        f"data.path {tmp_path / 'missing.jsonl'} does not exist: check the path (relative to the config file).",
        f"data.path {tmp_path / '../nowhere/x'} does not exist: check the path (relative to the config file).",
    ]
    for path, sentence in (([], "data.path is an empty list: name at least one dataset."),
                           ({"path": "data.json"}, "'data.path' is {'path': 'data.json'}: write one dataset as a "
                                                   "path, or several as a list."),
                           ([{"path": "data.json", "fraction": 11}], "'fraction' in data.path item 1 is 11: input "
                                                                     "should be less than or equal to 10.")):
        raw["data"]["path"] = path
        with pytest.raises(ConfigError) as caught:
            parse_config(raw, base_dir=tmp_path)
        assert caught.value.issues == [sentence]


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("key", ["train.learning_rate", "train.epochs", "train.weight_decay", "train.max_grad_norm",
                                 "train.warmup_ratio", "method.lora_alpha", "method.lora_dropout"])
def test_a_number_that_is_not_finite_is_refused_naming_its_key(tmp_path, key: str, value: float):
    """YAML's .inf / .nan in any float field (issue 24, item 10): one sentence naming the key, nothing trains."""
    section, name = key.split(".")
    raw = {"model": {"name_or_path": "org/model"}, "data": {"path": str(tmp_path / "d.jsonl")}, section: {name: value}}
    (tmp_path / "d.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    with pytest.raises(ConfigError) as raised:
        parse_config(raw)
    assert f"'{key}' is {value!r}: input should be a finite number." in raised.value.issues


def test_every_float_setting_of_every_schema_refuses_non_finite_numbers():
    """Every pydantic model of a config (a new section included) is built with allow_inf_nan=False."""
    from pydantic import BaseModel

    from engine import config, config_kernels, config_stage, config_trackers, sampling

    models = [v for m in (config, config_kernels, config_stage, config_trackers, sampling) for v in vars(m).values()
              if isinstance(v, type) and issubclass(v, BaseModel) and v is not BaseModel]
    assert len(models) >= 8 and all(m.model_config.get("allow_inf_nan") is False for m in models), models


@pytest.mark.parametrize("size, fits", [("2GB", True), ("1.5GB", True), (" 500mb ", True), ("1TB", True),
                                        ("nanGB", False), ("0GB", False), ("2GiB", False), ("2", False),
                                        ("infGB", False), ("-1GB", False)])
def test_a_shard_size_is_what_safetensors_sharding_parses_or_one_sentence(size: str, fits: bool):
    from huggingface_hub.serialization._base import parse_size_to_int

    from engine.config import ExportConfig, shard_size_problem
    from engine.config_read import validated
    from engine.export.cli import shard_size

    if fits:
        assert shard_size_problem(size) is None and parse_size_to_int(size) > 0
        assert ExportConfig(run_dir="r", max_shard_size=size).max_shard_size == size
        assert shard_size(size) == size
        return
    with pytest.raises(ConfigError) as error:
        validated(ExportConfig, {"run_dir": "r", "max_shard_size": size}, "export.yaml", "run_dir")
    assert "'max_shard_size'" in str(error.value) and "as 2GB or 500MB" in str(error.value)
    with pytest.raises(argparse.ArgumentTypeError, match="no shard size"):
        shard_size(size)


@pytest.mark.parametrize(("saved", "command"), [
    ({"models": ["base", "runs/a"], "data": {"path": "t.jsonl"}, "sampling": {"max_new_tokens": 8}}, "eval"),
    ({"model": {"name_or_path": "m"}, "data": {"path": "t.jsonl"}, "methods": ["lora", "ia3"],
      "presets": {}}, "compare"),
])  # fmt: skip
def test_a_run_command_given_an_evaluations_or_a_comparisons_config_names_the_command_that_reads_it(
        saved: dict, command: str, tmp_path) -> None:
    """newuser5: `launch.py plan` (or train) on the Evaluate or Compare tab's config.yaml answered with one
    unknown-key sentence per key (seven or eight of them); it is one sentence naming `launch.py eval` / `compare`."""
    import json as json_module

    from engine.sentences import worded

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(saved), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, writes=False)
    message = str(refused.value)
    assert len(refused.value.issues) == 1 and "Unknown key" not in message, message
    assert f"not of a training run: give it to python launch.py {command};" in message
    chinese = json_module.loads((Path(__file__).parents[2] / "assets/locales/zh.json").read_text(encoding="utf-8"))
    assert f"请交给 python launch.py {command}" in worded(refused.value.sentence, chinese)
