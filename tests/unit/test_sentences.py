"""Issue 24 item 12: sentences instead of tracebacks. A deeply nested JSON dataset, a model folder whose
config.json is not JSON or whose model.safetensors is truncated, and form values of the wrong type (epochs 'ten',
data.replace as a list) each end in one sentence naming the file or the key, on the page and at train start."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.config import ConfigError, DataConfig, ModelConfig, parse_config
from engine.data.pipeline import inspect_dataset
from engine.data.readers import read_records
from engine.jobs.failures import DataError
from engine.jobs.rundir import RunDir
from engine.model.config_json import ModelFileError, safetensors_params
from tests.cli import run_train_in_process
from webui.forms import mapping as forms
from webui.forms.fields import EPOCHS
from webui.forms.models import model_info

DEEP = 100_000  # levels: far past Python's recursion limit


@pytest.mark.parametrize(("name", "text", "where"), [
    ("deep.json", "[" + '{"a":' * DEEP + "1" + "}" * DEEP + "]", "deep.json row 1"),
    ("deep.jsonl", '{"instruction": "x", "output": ' + "[" * DEEP + "]" * DEEP + "}\n", "deep.jsonl line 1"),
], ids=["json", "jsonl"])
def test_a_deeply_nested_dataset_is_one_sentence_naming_the_file(tmp_path: Path, name: str, text: str, where: str):
    path = tmp_path / name
    path.write_text(text)
    for read in (lambda: inspect_dataset(DataConfig(path=str(path))), lambda: read_records(path)):
        with pytest.raises(DataError, match="nests its JSON lists or objects too deeply") as refused:
            read()
        assert str(refused.value).startswith(name) and "\n" not in str(refused.value)
    with pytest.raises(DataError, match=where):
        inspect_dataset(DataConfig(path=str(path)))


@pytest.fixture
def damaged_model(tiny_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "damaged"
    shutil.copytree(tiny_model, folder)
    return folder


def test_a_config_json_that_is_not_json_is_one_sentence_in_the_model_info_and_at_train_start(damaged_model: Path,
                                                                                            tmp_path: Path):
    (damaged_model / "config.json").write_text('{"model_type": "llama",')
    shown = model_info("damaged", damaged_model).markdown()
    assert "damaged/config.json is not valid JSON" in shown and "wb-error" in shown
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    config = parse_config({"model": {"name_or_path": str(damaged_model)}, "data": {"path": str(data)},
                           "train": {"max_steps": 1}, "output_dir": str(tmp_path / "run")})

    assert run_train_in_process(config) == 1
    error = RunDir(tmp_path / "run").read_status()["error"]
    assert error.startswith("damaged/config.json is not valid JSON (") and error.endswith("download or copy the "
                                                                                            "model again.")
    (damaged_model / "config.json").write_text("[1, 2]")
    assert "holds a JSON list, not an object" in model_info("damaged", damaged_model).markdown()


def test_a_truncated_model_safetensors_is_one_sentence_naming_the_file(damaged_model: Path):
    weights = damaged_model / "model.safetensors"
    assert safetensors_params(damaged_model) > 0
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=r"damaged/model.safetensors is truncated or damaged"):
        safetensors_params(damaged_model)
    assert "damaged/model.safetensors is truncated" in model_info("damaged", damaged_model).markdown()
    from engine.model.loading import load_model

    with pytest.raises(ModelFileError, match=r"damaged/model.safetensors is truncated"):
        load_model(ModelConfig(name_or_path=str(damaged_model)))
    weights.write_bytes(b"\x05")  # shorter than the header's own length
    assert "is truncated or damaged" in model_info("damaged", damaged_model).markdown()


def test_values_of_the_wrong_type_get_the_validation_sentence(tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    values = forms.defaults()
    values[EPOCHS], values[forms.REPLACE], values[forms.STOP_BY] = "ten", ["a"], "epochs"
    with pytest.raises(ConfigError) as refused:
        forms.to_config(values, model="tiny", data_path=str(data), output_dir=str(tmp_path / "runs" / "r"))
    said = " ".join(refused.value.issues)
    assert "'train.epochs' is 'ten': input should be a valid number" in said
    assert "'data.replace' is ['a']: input should be a valid dictionary" in said
    values[EPOCHS], values[forms.REPLACE] = float("inf"), {}
    with pytest.raises(ConfigError, match="finite"):
        forms.to_config(values, model="tiny", data_path=str(data), output_dir=str(tmp_path / "runs" / "r"))
    assert json.dumps(values[forms.REPLACE]) == "{}"
