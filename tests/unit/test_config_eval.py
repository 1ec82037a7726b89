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


@pytest.mark.parametrize(("rows", "held"), [
    ([{"prompt": "Hi", "chosen": "Hello.", "rejected": "What."}], "holds preference pairs (prompt, chosen, rejected)"),
    ([{"prompt": "Hi", "completion": "Hello.", "label": True}], "holds replies marked good or bad"),
])
def test_a_test_set_of_preference_rows_says_that_evaluation_reads_sft_rows(tmp_path: Path, rows: list[dict],
                                                                             held: str) -> None:
    """An evaluation given a pairs (or KTO) file says what it reads and how to give it that, not training's
    train.stage advice (an evaluation has no stage); training still gets its own sentence from the same reader."""
    import json

    from engine.config import DataConfig
    from engine.data.pipeline import load_rows
    from engine.eval.testset import EvalSetError, load_test_rows
    from engine.jobs.failures import DataError

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = parse_eval_config({"models": ["base"], "base": "m", "data": {"path": str(data)}})
    with pytest.raises(EvalSetError) as said:
        load_test_rows(config)
    sentence = str(said.value)
    assert sentence.startswith(f"pairs.jsonl {held}") and "but an evaluation reads SFT rows" in sentence
    assert "prompt/completion, instruction/output or messages" in sentence and "train.stage" not in sentence
    with pytest.raises(DataError, match="set train.stage to"):  # what a run given the same file is told
        load_rows(DataConfig(path=str(data)))
