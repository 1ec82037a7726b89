"""RunConfig: the contract keys, every problem at once, relative paths, choices for the UI; `plan`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config import (
    METHOD_NAMES,
    ConfigError,
    MethodConfig,
    RunConfig,
    TrainConfig,
    choices,
    field_help,
    load_config,
    parse_config,
)
from tests.cli import launch, write_config, write_rows


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
    assert isinstance(RunConfig.model_validate(yaml.safe_load(config.with_versions().to_yaml())).versions["torch"],
                      str)


def test_plan_counts_what_training_trains(tiny_model, tmp_path):
    """`plan` builds the model on the meta device; its count must equal the real run's."""
    data = write_rows(tmp_path / "data.json", [{"instruction": "a", "output": "b"}] * 4)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run", method={"name": "lora"},
                          train={"max_steps": 1})
    planned = launch("plan", str(config))
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    trained = launch("train", str(config))
    assert trained.returncode == 0, trained.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert plan["trainable_params"] == metrics["trainable_params"] > 0
    assert plan["total_params"] == metrics["total_params"]


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
