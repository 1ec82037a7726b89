"""train.report_to (engine/config_trackers.py) and where each tracker writes (engine/train/trackers.py): the
field's values, the sentence for a tracker that is not installed, and the local or offline defaults."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from unittest import mock

import pytest

from engine import config_trackers
from engine.config import ConfigError, TrainConfig, parse_config
from engine.jobs.rundir import RunDir
from engine.train import trackers
from tests.unit.test_config import contract_config


def test_a_run_keeps_a_tensorboard_log_unless_told_otherwise():
    assert TrainConfig().report_to == ["tensorboard"]
    assert TrainConfig(report_to=["none"]).report_to == ["none"]
    assert TrainConfig(report_to="trackio").report_to == ["trackio"]  # one name, as TrainingArguments takes it
    assert TrainConfig(report_to=["trackio", "tensorboard", "trackio"]).report_to == ["trackio", "tensorboard"]
    assert TrainConfig(report_to=[]).report_to == ["none"]


@pytest.mark.parametrize("report_to, expected", [
    (["none", "wandb"], "none cannot be listed with a tracker"),
    (["neptune"], "'tensorboard'"),  # pydantic lists the names it takes
])
def test_what_report_to_refuses(tmp_path, report_to, expected):
    raw = contract_config(tmp_path)
    raw["train"]["report_to"] = report_to
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path)
    assert [issue for issue in caught.value.issues if "train.report_to" in issue and expected in issue], caught.value


def test_a_tracker_that_is_not_installed_is_one_sentence_with_its_pip_command(tmp_path, monkeypatch):
    monkeypatch.setattr(config_trackers, "find_spec", lambda name: None if name == "wandb" else find_spec(name))
    raw = contract_config(tmp_path)
    raw["train"]["report_to"] = ["tensorboard", "wandb"]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path)
    assert caught.value.issues == ["train.report_to names wandb, which is not installed: pip install wandb, or remove "
                                   "it from train.report_to."]
    assert config_trackers.tracker_problems(["none"]) == []


def test_the_trainer_gets_the_integrations_and_the_run_name(tmp_path):
    config = parse_config(contract_config(tmp_path), base_dir=tmp_path)
    run = RunDir(tmp_path / "runs" / "one")
    assert trackers.arguments(config, run) == {"report_to": ["tensorboard"], "run_name": "one",
                                               "project": "peft-workbench"}
    config.train.report_to = ["none"]
    assert trackers.arguments(config, run)["report_to"] == "none"


def test_each_tracker_writes_in_the_workspace_or_offline():
    run = RunDir(Path("/work/space/runs/one"))
    env = trackers.environment(["tensorboard", "wandb", "trackio", "mlflow", "swanlab"], run)
    assert env["WANDB_MODE"] == "offline" and env["WANDB_DIR"] == "/work/space/runs/one"
    assert env["TRACKIO_DIR"] == "/work/space/trackio"
    assert env["MLFLOW_TRACKING_URI"] == "file:///work/space/mlruns"
    assert env["SWANLAB_MODE"] == "offline"
    assert trackers.environment(["tensorboard"], run) == {}  # TensorBoard: RUN/tb/, set on its callback
    assert trackers.workspace(RunDir(Path("/elsewhere/one"))) == Path("/elsewhere")


def test_what_the_user_set_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(config_trackers, "find_spec", lambda _name: object())  # as if wandb were installed
    raw = contract_config(tmp_path)
    raw["train"]["report_to"] = ["wandb"]
    config = parse_config(raw, base_dir=tmp_path)
    with mock.patch.dict(os.environ, {"WANDB_MODE": "online"}):  # the whole environment is restored after
        os.environ.pop("WANDB_DIR", None)
        lines = trackers.prepare(config, RunDir(tmp_path / "runs" / "one"))
        assert lines == ["report_to: wandb (WANDB_MODE=online)"]
        assert os.environ["WANDB_DIR"] == str(tmp_path / "runs" / "one")
