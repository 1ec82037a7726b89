"""The preference data shapes beyond TRL's (engine/data/preference.py, engine/data/unpaired.py): LLaMA-Factory's
ranking files (alpaca, sharegpt) read as the same pairs as TRL's shape, KTO's unpaired rows, pairs split in two
for KTO, each file's shape named in the data summary, and a bad row in one sentence naming the file, row and
field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import DataConfig
from engine.data.preference import load_pairs, normalise_pairs
from engine.data.unpaired import load_unpaired, normalise_unpaired
from engine.jobs.failures import DataError

USER = {"role": "user", "content": "Who are you?"}
GOOD = {"role": "assistant", "content": "I am a helpful assistant."}
BAD = {"role": "assistant", "content": "Go away."}
TRL = {"prompt": "Who are you?", "chosen": GOOD["content"], "rejected": BAD["content"]}
ALPACA = {"instruction": "Who are you?", "input": "", "chosen": GOOD["content"], "rejected": BAD["content"]}
SHAREGPT = {"conversations": [{"from": "human", "value": "Who are you?"}],
            "chosen": {"from": "gpt", "value": GOOD["content"]}, "rejected": {"from": "gpt", "value": BAD["content"]}}
KTO = [{"prompt": "Who are you?", "completion": GOOD["content"], "label": True},
       {"prompt": [USER], "completion": [BAD], "label": False}]


def write(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("record", [ALPACA, SHAREGPT], ids=["alpaca", "sharegpt"])
def test_llamafactory_ranking_rows_are_the_same_pair_as_trls(record: dict) -> None:
    assert normalise_pairs([record], "ranking.json") == normalise_pairs([TRL], "trl.json")


def test_an_alpaca_ranking_row_builds_its_prompt_as_sft_does() -> None:
    row = {**ALPACA, "input": "Answer briefly.", "system": "Be kind.", "history": [["Hi", "Hello."]]}
    [pair] = normalise_pairs([row], "ranking.json")
    assert pair["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello."},
                                {"role": "user", "content": "Who are you?\n\nAnswer briefly."}]


@pytest.mark.parametrize(("rows", "shape"), [([TRL], "preference"), ([ALPACA], "preference, alpaca ranking"),
                                             ([SHAREGPT], "preference, sharegpt ranking")])
def test_each_file_is_detected_and_named(tmp_path: Path, rows: list[dict], shape: str) -> None:
    mixed = load_pairs(DataConfig(path=str(write(tmp_path, "pairs.json", rows))), seed=0)
    assert mixed.format == shape and len(mixed.rows) == 1


@pytest.mark.parametrize(("row", "sentence"), [
    ({k: v for k, v in ALPACA.items() if k != "rejected"}, "ranking.json row 2: field 'rejected' is missing: a "
     "preference pair needs a prompt, the chosen reply and the rejected one."),
    ({**ALPACA, "rejected": ALPACA["chosen"]}, "ranking.json row 2: field 'rejected' is the same reply as 'chosen': a "
     "pair teaches nothing unless its replies differ, fix or remove the row."),
    ({**ALPACA, "instruction": " "}, "ranking.json row 2: field 'instruction' is empty: write the instruction the "
     "model should follow, or remove the row."),
    ({**SHAREGPT, "conversations": []}, "ranking.json row 2: field 'conversations' must be a non-empty list of "
     "turns: the prompt both replies answer."),
    ({**SHAREGPT, "rejected": {"from": "gpt", "value": GOOD["content"]}}, "ranking.json row 2: field 'rejected' is "
     "the same reply as 'chosen': a pair teaches nothing unless its replies differ, fix or remove the row."),
])  # fmt: skip
def test_a_bad_ranking_row_is_one_sentence(row: dict, sentence: str) -> None:
    first = ALPACA if "instruction" in row else SHAREGPT
    with pytest.raises(DataError) as caught:
        normalise_pairs([first, row], "ranking.json")
    assert str(caught.value) == sentence


def test_kto_rows_read_as_strings_or_turns(tmp_path: Path) -> None:
    mixed = load_unpaired(DataConfig(path=str(write(tmp_path, "kto.json", KTO))), seed=0)
    assert mixed.format == "kto"
    assert mixed.rows == [{"messages": [USER], "completion": GOOD, "label": True},
                          {"messages": [USER], "completion": BAD, "label": False}]


@pytest.mark.parametrize("rows", [[TRL], [ALPACA], [SHAREGPT]], ids=["trl", "alpaca", "sharegpt"])
def test_kto_splits_each_pair_into_a_good_and_a_bad_reply(tmp_path: Path, rows: list[dict]) -> None:
    mixed = load_unpaired(DataConfig(path=str(write(tmp_path, "pairs.json", rows))), seed=0)
    assert mixed.rows == [{"messages": [USER], "completion": GOOD, "label": True},
                          {"messages": [USER], "completion": BAD, "label": False}]
    assert mixed.format.endswith("split into good and bad replies")


@pytest.mark.parametrize(("row", "sentence"), [
    ({**KTO[0], "label": "yes"}, "kto.json row 2: field 'label' is 'yes': write true for a good reply or false for a "
                                 "bad one."),
    ({**KTO[0], "prompt": ""}, "kto.json row 2: field 'prompt' is empty: write the prompt the reply answers, or "
                               "remove the row."),
    ({**KTO[0], "completion": " "}, "kto.json row 2: field 'completion' is empty: write the reply, or remove the "
                                    "row."),
])  # fmt: skip
def test_a_bad_kto_row_is_one_sentence(row: dict, sentence: str) -> None:
    with pytest.raises(DataError) as caught:
        normalise_unpaired([KTO[1], row], "kto.json")
    assert str(caught.value) == sentence


def test_kto_needs_both_labels_and_dpo_refuses_kto_rows_in_one_sentence() -> None:
    with pytest.raises(DataError, match="has only good replies .* add rows of the other label"):
        normalise_unpaired([KTO[0], KTO[0]], "kto.json")
    with pytest.raises(DataError, match="holds rows of prompt, completion and label .* set train.stage to kto"):
        normalise_pairs(KTO, "kto.json")
    with pytest.raises(DataError, match=r"holds alpaca rows \(SFT's\), not preference pairs: .* \(kto: or prompt, "
                                        "completion and label\\)"):
        normalise_unpaired([{"instruction": "Hi", "output": "Hello."}], "sft.json")
    with pytest.raises(DataError, match="KTO needs prompt, completion and label"):
        normalise_unpaired([{"question": "Hi"}], "other.json")


def test_data_columns_map_a_pairs_file_as_they_map_an_sft_file(tmp_path: Path) -> None:
    """A pairs file whose columns are named otherwise reads as the same pairs once data.columns maps them, for the
    pair stages and for KTO (and for its inspection); a name no pair has, or a column the file lacks, is one
    sentence."""
    from engine.data.inspect_pairs import with_pair_columns
    from engine.data.sample import read_sample

    renamed = [{"question": TRL["prompt"], "better": TRL["chosen"], "worse": TRL["rejected"]}]
    columns = {"prompt": "question", "chosen": "better", "rejected": "worse"}
    cfg = DataConfig(path=str(write(tmp_path, "renamed.json", renamed)), columns=columns)
    plain = load_pairs(DataConfig(path=str(write(tmp_path, "pairs.json", [TRL]))), seed=0)
    assert load_pairs(cfg, seed=0).rows == plain.rows
    assert load_unpaired(cfg, seed=0).rows == [{"messages": [USER], "completion": GOOD, "label": True},
                                               {"messages": [USER], "completion": BAD, "label": False}]
    kto = [{"query": "Who are you?", "answer": GOOD["content"], "good": True},
           {"query": "Who are you?", "answer": BAD["content"], "good": False}]
    kto_cfg = DataConfig(path=str(write(tmp_path, "kto.json", kto)),
                         columns={"prompt": "query", "completion": "answer", "label": "good"})
    assert load_unpaired(kto_cfg, seed=0).rows == load_unpaired(DataConfig(path=str(write(
        tmp_path, "k.json", KTO[:1] + [{**KTO[0], "completion": BAD["content"], "label": False}]))), seed=0).rows
    assert with_pair_columns(cfg, read_sample(Path(cfg.path))).records[0]["chosen"] == TRL["chosen"]
    assert with_pair_columns(DataConfig(path=cfg.path), read_sample(Path(cfg.path))) is None  # unmapped: no pairs
    with pytest.raises(DataError, match="data.columns names 'output', which is not a standard column: use one of "
                                        "prompt, chosen, rejected"):
        load_pairs(DataConfig(path=cfg.path, columns={**columns, "output": "better"}), seed=0)
    with pytest.raises(DataError, match="renamed.json has no column 'best' to use as 'chosen'"):
        load_pairs(DataConfig(path=cfg.path, columns={**columns, "chosen": "best"}), seed=0)
