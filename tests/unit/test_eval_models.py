"""Which model each entry of an evaluation's `models` is (engine/eval/models.py), read from small files only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config_eval import EvalConfig
from engine.eval.models import EvalModelError, plan_models


def run_folder(path: Path, weights: str) -> Path:
    (path / weights).mkdir(parents=True)
    config = {"model": {"name_or_path": "org/base"}, "method": {"name": "lora" if weights == "adapter" else "full"},
              "data": {"path": "d.json"}, "output_dir": str(path)}
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    name = "adapter_config.json" if weights == "adapter" else "config.json"
    (path / weights / name).write_text(json.dumps({"base_model_name_or_path": "org/base"}), encoding="utf-8")
    return path


def test_runs_exports_and_model_folders_are_told_apart(tmp_path: Path) -> None:
    lora, full = run_folder(tmp_path / "lora", "adapter"), run_folder(tmp_path / "full", "model")
    export = tmp_path / "exports" / "merged"
    (export / "model").mkdir(parents=True)
    (export / "model" / "config.json").write_text("{}", encoding="utf-8")
    (export / "config.yaml").write_text(yaml.safe_dump({"run_dir": str(lora)}), encoding="utf-8")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}", encoding="utf-8")
    models = ["base", str(lora), str(full), str(export), str(plain), str(lora / "adapter")]
    plan = plan_models(EvalConfig(models=models, data={"path": "t.json"}))
    assert [(e.name, e.kind) for e in plan.entries] == [
        ("base", "base"), ("lora", "adapter"), ("full", "model"), ("merged", "model"), ("plain", "model"),
        ("lora-2", "adapter")]
    assert plan.entries[3].path == str(export / "model")
    assert plan.load.model == "org/base" and [s.kind for s in plan.load.sources] == ["adapter", "adapter"]


def test_standalone_models_alone_load_no_base_and_a_missing_one_is_a_sentence(tmp_path: Path) -> None:
    full = run_folder(tmp_path / "full", "model")
    assert plan_models(EvalConfig(models=[str(full)], data={"path": "t.json"})).load is None
    with pytest.raises(EvalModelError, match="does not exist: give a run folder"):
        plan_models(EvalConfig(models=[str(tmp_path / "nope")], data={"path": "t.json"}))
