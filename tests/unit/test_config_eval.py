"""EvalConfig (engine/config_eval.py): paths relative to the config file, one test set, sentences for mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError
from engine.config_eval import parse_eval_config


def test_relative_paths_resolve_against_the_config_folder_and_greedy_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "test.jsonl").write_text("{}\n", encoding="utf-8")
    config = parse_eval_config({"models": ["base", "runs/a"], "data": {"path": "test.jsonl"}, "output_dir": "out"},
                               base_dir=tmp_path)
    assert config.models == ["base", str(tmp_path / "runs" / "a")]
    assert config.data.path == str(tmp_path / "test.jsonl") and config.output_dir == str(tmp_path / "out")
    assert config.sampling.greedy and config.batch_size == 8
    again = parse_eval_config(__import__("yaml").safe_load(config.to_yaml()))
    assert again == config  # what the job folder keeps reads back the same


@pytest.mark.parametrize(("raw", "sentence"), [
    ({"models": ["base", "r"]}, "Give the test set as data"),
    ({"models": ["r"], "data": {"path": "t.json"}, "validation_of": "r"}, "Give the test set as data"),
    ({"models": ["r", "r"], "data": {"path": "t.json"}}, "lists the same model twice"),
    ({"models": ["base"], "data": {"path": "t.json"}}, "name the base model"),
    ({"models": [], "data": {"path": "t.json"}}, "'models'"),
    ({"models": ["r"], "data": {"path": "t.json"}, "sampling": {"temperature": -1}}, "'sampling.temperature'"),
    ({"models": ["r"], "data": {"path": "t.json"}, "judges": {}}, "Unknown key 'judges'"),
    ({"models": ["r"], "data": {"path": "t.json"}, "judge": {"model": "m"}}, "judge.base_url"),
])
def test_a_config_that_cannot_run_is_refused_with_a_sentence(raw: dict, sentence: str) -> None:
    with pytest.raises(ConfigError, match=sentence):
        parse_eval_config(raw)
