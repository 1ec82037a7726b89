"""Placeholders (`{{name}}` with data.replace) and data.reasoning on pairs and KTO files: each reply is the
conversation it ends, passed through the SFT rows' own step (engine.data.pipeline.as_trained), so a pair's
sides are exactly the SFT rows of the same conversations; the inspection finds a pairs file's placeholders and
shows them filled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import DataConfig
from engine.data.pipeline import load_datasets
from engine.data.preference import SIDES, load_pairs
from engine.data.unpaired import load_unpaired
from engine.jobs.failures import DataError

SYSTEM = "You are {{name}}."
PROMPT = "Who made you, {{name}}?"
CHOSEN = {"role": "assistant", "content": "<think>The user asks about {{author}}.</think>I am {{name}}, made by "
                                          "{{author}}."}
REJECTED = {"role": "assistant", "content": "No idea.", "reasoning": "Be short with {{name}}."}
PAIR = {"system": SYSTEM, "prompt": PROMPT, "chosen": [CHOSEN], "rejected": [REJECTED]}
REPLACE = {"name": "Aria", "author": "Ada Labs"}


def write(tmp_path: Path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return str(path)


def sft_conversation(tmp_path: Path, reply: dict, **options: object) -> list[dict]:
    """The same conversation as an SFT row (openai format), read as an SFT run reads it."""
    row = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}, reply]}
    return load_datasets(DataConfig(path=write(tmp_path, "sft.json", [row]), **options)).rows[0]["messages"]


@pytest.mark.parametrize("reasoning", ["keep", "drop"])
def test_each_side_of_a_pair_is_filled_and_stripped_as_the_sft_row_of_its_conversation(
        tmp_path: Path, reasoning: str) -> None:
    options = {"replace": REPLACE, "reasoning": reasoning}
    [pair] = load_pairs(DataConfig(path=write(tmp_path, "pairs.json", [PAIR]), **options), seed=0).rows
    for side, reply in zip(SIDES, (CHOSEN, REJECTED), strict=True):
        assert [*pair["messages"], pair[side]] == sft_conversation(tmp_path, reply, **options)
    assert pair["messages"][0]["content"] == "You are Aria." and pair["messages"][1]["content"].endswith("Aria?")
    if reasoning == "drop":
        assert pair["chosen"] == {"role": "assistant", "content": "I am Aria, made by Ada Labs."}
        assert "reasoning_content" not in pair["rejected"]
    else:  # kept, and filled: the <think> block in the text, the reasoning field as reasoning_content
        assert pair["chosen"]["content"].startswith("<think>The user asks about Ada Labs.</think>")
        assert pair["rejected"]["reasoning_content"] == "Be short with Aria."


def test_kto_rows_and_pairs_read_by_kto_are_filled_and_stripped_alike(tmp_path: Path) -> None:
    options = {"replace": REPLACE, "reasoning": "drop"}
    rows = [{"system": SYSTEM, "prompt": PROMPT, "completion": [CHOSEN], "label": True},
            {"system": SYSTEM, "prompt": PROMPT, "completion": [REJECTED], "label": False}]
    kto = load_unpaired(DataConfig(path=write(tmp_path, "kto.json", rows), **options), seed=0).rows
    split = load_unpaired(DataConfig(path=write(tmp_path, "pairs.json", [PAIR]), **options), seed=0).rows
    assert kto == split
    assert [[*row["messages"], row["completion"]] for row in kto] == [
        sft_conversation(tmp_path, reply, **options) for reply in (CHOSEN, REJECTED)]
    assert kto[0]["completion"]["content"] == "I am Aria, made by Ada Labs."


def test_a_placeholder_nothing_fills_or_a_reply_of_only_reasoning_names_the_pairs_row(tmp_path: Path) -> None:
    other = {"prompt": "Hi", "chosen": "Hello.", "rejected": "Go."}
    path = write(tmp_path, "pairs.json", [other, PAIR])
    with pytest.raises(DataError, match=r"pairs.json row 2 holds the placeholder \{\{author\}\}, which nothing "):
        load_pairs(DataConfig(path=path, replace={"name": "Aria"}), seed=0)
    thinking = {**other, "rejected": "<think>only thoughts</think>"}
    with pytest.raises(DataError, match=r"think.json row 2 turn 2: the assistant reply is only reasoning"):
        load_pairs(DataConfig(path=write(tmp_path, "think.json", [other, thinking]), reasoning="drop"), seed=0)
    kto = [{"prompt": "Hi", "completion": "Hello.", "label": True}, {"prompt": "{{who}}", "completion": "Go.",
                                                                      "label": False}]
    with pytest.raises(DataError, match=r"kto.json row 2 holds the placeholder \{\{who\}\}"):
        load_unpaired(DataConfig(path=write(tmp_path, "kto.json", kto)), seed=0)


def test_the_inspection_finds_a_pairs_files_placeholders_and_shows_them_filled(tmp_path: Path) -> None:
    from engine.data.inspect_pairs import inspect_preference
    from engine.data.sample import read_sample

    path = write(tmp_path, "pairs.json", [PAIR, {"prompt": "Hi {{name}}", "chosen": "Hello.", "rejected": "Go."}])
    report = inspect_preference(DataConfig(path=path, replace={"name": "Aria"}), read_sample(Path(path)))
    assert report["placeholders"] == [{"name": "name", "count": 5, "rows": 2}, {"name": "author", "count": 2,
                                                                                "rows": 1}]
    assert report["preview"][0]["prompt"] == "Who made you, Aria?"
    assert "{{author}}" in report["preview"][0]["chosen"][0]["content"]  # not named: shown as written


@pytest.mark.parametrize("reader", [load_pairs, load_unpaired])
def test_a_pair_whose_replies_differ_only_in_reasoning_is_refused_once_it_is_dropped(tmp_path: Path,
                                                                                       reader) -> None:
    pair = {"prompt": "Hi?", "chosen": "<think>Greet back.</think>Hello!", "rejected": "Hello!"}
    path = write(tmp_path, "pairs.json", [PAIR, pair])
    kept = reader(DataConfig(path=path, reasoning="keep", replace=REPLACE), seed=0).rows
    assert len(kept) == (2 if reader is load_pairs else 4)
    with pytest.raises(DataError) as refused:
        reader(DataConfig(path=path, reasoning="drop", replace=REPLACE), seed=0)
    assert str(refused.value) == ("pairs.json row 2: field 'rejected' is the same reply as 'chosen' once "
                                  "data.reasoning drop cut their reasoning: a pair teaches nothing unless its "
                                  "replies differ, fix or remove the row.")


def test_a_pair_whose_replies_become_the_same_once_placeholders_are_filled_is_refused(tmp_path: Path) -> None:
    pair = {"prompt": "Who?", "chosen": "I am {{name}}.", "rejected": "I am Aria."}
    with pytest.raises(DataError, match=r"pairs.json row 1: .* once data.replace filled their placeholders"):
        load_pairs(DataConfig(path=write(tmp_path, "pairs.json", [pair]), replace=REPLACE), seed=0)
