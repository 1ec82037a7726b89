"""Preference pairs (engine/data/preference.py) and the stage schema (engine/config_stage.py): shapes detected,
bad rows in one sentence, and each reply's tokens exactly those SFT trains for the same conversation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.config import ConfigError, DataConfig, parse_config
from engine.config_stage import STAGES, TRAINED_STAGES
from engine.data.pipeline import IGNORE_INDEX, tokenize_rows
from engine.data.preference import load_pairs, normalise_pairs, tokenize_pairs
from engine.data.tokens import ensure_chat_template, ensure_pad_token
from engine.jobs.failures import DataError

STRINGS = {"prompt": "Who are you?", "chosen": "I am a helpful assistant.", "rejected": "Go away."}
TRL_MESSAGES = {
    "prompt": [{"role": "user", "content": "Who are you?"}],
    "chosen": [{"role": "assistant", "content": "I am a helpful assistant."}],
    "rejected": [{"role": "assistant", "content": "Go away."}],
}
USER = {"role": "user", "content": "Who are you?"}
ULTRAFEEDBACK = {
    "prompt": "Who are you?",
    "chosen": [USER, {"role": "assistant", "content": "I am a helpful assistant."}],
    "rejected": [USER, {"role": "assistant", "content": "Go away."}],
}
EXPECTED = {"messages": [{"role": "user", "content": "Who are you?"}],
            "chosen": {"role": "assistant", "content": "I am a helpful assistant."},
            "rejected": {"role": "assistant", "content": "Go away."}}


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ensure_chat_template(tok)
    ensure_pad_token(tok)
    return tok


@pytest.mark.parametrize("record", [STRINGS, TRL_MESSAGES, ULTRAFEEDBACK], ids=["strings", "trl", "ultrafeedback"])
def test_every_shape_normalises_to_the_same_pair(record: dict) -> None:
    assert normalise_pairs([record, record], "pairs.json") == [EXPECTED, EXPECTED]


def test_a_system_prompt_and_sharegpt_roles_are_read_as_in_sft() -> None:
    record = {"system": "Be brief.", "prompt": [{"from": "human", "value": "Hi"}], "chosen": "Hello.",
              "rejected": "What?"}
    pair = normalise_pairs([record], "pairs.json")[0]
    assert pair["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(("row", "sentence"), [
    ({"prompt": "Hi", "chosen": "Hello."}, "pairs.json row 2: field 'rejected' is missing: a preference pair needs "
                                           "a prompt, the chosen reply and the rejected one."),
    ({"prompt": "Hi", "chosen": "Hello.", "rejected": "Hello."}, "pairs.json row 2: field 'rejected' is the same "
     "reply as 'chosen': a pair teaches nothing unless its replies differ, fix or remove the row."),
    ({"prompt": " ", "chosen": "Hello.", "rejected": "What?"}, "pairs.json row 2: field 'prompt' is empty: write the "
                                                               "prompt both replies answer, or remove the row."),
    ({"prompt": "Hi", "chosen": "", "rejected": "What?"}, "pairs.json row 2: field 'chosen' is empty: write the "
                                                          "reply, or remove the row."),
])  # fmt: skip
def test_a_bad_row_is_one_sentence_naming_the_row_and_field(row: dict, sentence: str) -> None:
    with pytest.raises(DataError) as caught:
        normalise_pairs([STRINGS, row], "pairs.json")
    assert str(caught.value) == sentence


def test_rows_that_hold_no_pair_are_refused_in_one_sentence() -> None:
    with pytest.raises(DataError, match=r"sft.json holds alpaca rows \(SFT's\), not preference pairs: .* set "
                                        r"train.stage to sft, or choose a pairs file"):
        normalise_pairs([{"instruction": "Hi", "output": "Hello."}], "sft.json")
    with pytest.raises(DataError, match=r"row 1 has the columns question, which hold no preference pair"):
        normalise_pairs([{"question": "Hi"}], "other.json")


def test_a_reply_after_another_conversation_is_refused() -> None:
    other = {**ULTRAFEEDBACK, "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No"}]}
    with pytest.raises(DataError, match="continues another conversation than 'chosen'"):
        normalise_pairs([other], "pairs.json")


def test_pairs_load_from_a_file_with_their_format_named(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (STRINGS, TRL_MESSAGES)), encoding="utf-8")
    mixed = load_pairs(DataConfig(path=str(path)), seed=0)
    assert mixed.rows == [EXPECTED, EXPECTED] and mixed.format == "preference"


MULTI_TURN = {**TRL_MESSAGES, "prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                                         USER]}


@pytest.mark.parametrize("record", [STRINGS, ULTRAFEEDBACK, MULTI_TURN], ids=["one-turn", "ultrafeedback", "multi"])
def test_each_reply_is_exactly_the_tokens_sft_trains_for_the_same_conversation(record: dict, tokenizer: Any) -> None:
    pair = normalise_pairs([record], "pairs.json")[0]
    [tokens], _ = tokenize_pairs([pair], tokenizer, cutoff_len=512, overlength="truncate")
    for side in ("chosen", "rejected"):
        [sft], _ = tokenize_rows([{"messages": [*pair["messages"], pair[side]]}], tokenizer, 512, "truncate")
        ids, labels = sft["input_ids"], sft["labels"]
        start = len(tokens["prompt_ids"])
        reply = tokens[f"{side}_ids"]
        assert ids[: start + len(reply)] == tokens["prompt_ids"] + reply  # the same rendering, the same tokens
        assert labels[start: start + len(reply)] == reply  # every reply token is trained by SFT ...
        assert labels[start - 1] == IGNORE_INDEX  # ... from its first one (the prompt's last is not) ...
        assert all(label == IGNORE_INDEX for label in labels[start + len(reply):])  # ... to its last
        assert tokenizer.decode(reply).startswith(pair[side]["content"])


def test_the_prompt_keeps_its_end_and_a_long_pair_is_cut_or_dropped(tokenizer: Any) -> None:
    pair = normalise_pairs([STRINGS], "pairs.json")[0]
    [full], _ = tokenize_pairs([pair], tokenizer, 512, "truncate")
    [short], _ = tokenize_pairs([pair], tokenizer, 512, "truncate", max_prompt_length=3)
    assert short["prompt_ids"] == full["prompt_ids"][-3:]
    cutoff = len(full["prompt_ids"]) + 2
    [cut], stats = tokenize_pairs([pair], tokenizer, cutoff, "truncate")
    assert cut["chosen_ids"] == full["chosen_ids"][:2] and stats.truncated == 1
    assert tokenize_pairs([pair], tokenizer, cutoff, "drop")[0] == []


# ---------------------------------------------------------------------------------------------- the stage schema


def config(tmp_path: Path, method: str = "lora", data: dict | None = None, **train: Any) -> dict:
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([STRINGS]), encoding="utf-8")
    return {"model": {"name_or_path": "m"}, "method": {"name": method}, "data": {"path": str(path), **(data or {})},
            "train": train, "output_dir": str(tmp_path / "run")}


def test_a_config_without_a_stage_is_sft_and_a_dpo_config_round_trips(tmp_path: Path) -> None:
    assert parse_config(config(tmp_path)).train.stage == "sft"
    dpo = parse_config(config(tmp_path, stage="dpo", beta=0.2, rpo_alpha=1.0, max_prompt_length=64))
    import yaml

    again = parse_config(yaml.safe_load(dpo.to_yaml()))
    assert (again.train.stage, again.train.beta, again.train.rpo_alpha) == ("dpo", 0.2, 1.0)


@pytest.mark.parametrize(("method", "data", "train", "sentence"), [
    ("prefix", None, {"stage": "dpo"}, "method 'prefix' cannot train a preference stage yet"),
    ("lora", {"format": "alpaca"}, {"stage": "dpo"}, "set data.format to auto, not alpaca"),
    ("lora", {"format": "alpaca"}, {"stage": "kto"}, "train.stage 'kto' reads rows of prompt, completion and label"),
    ("lora", None, {"stage": "kto", "batch_size": 1}, "train.stage kto needs train.batch_size of 2 or more"),
    ("lora", None, {"stage": "simpo", "loss_type": "ipo"}, "train.loss_type and train.rpo_alpha are DPO's options, "
                                                          "not SimPO's"),
    ("lora", {"format": "sharegpt"}, {"stage": "pretrain"}, "train.stage pretrain trains on plain text"),
    ("lora", None, {"stage": "dpo", "label_smoothing": 0.1}, "label_smoothing is only read by loss_type robust"),
])  # fmt: skip
def test_a_stage_that_does_not_fit_is_one_sentence(tmp_path: Path, method: str, data: dict | None, train: dict,
                                                   sentence: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(tmp_path, method, data, **train))
    assert sentence in str(caught.value)


def test_every_trained_stage_has_an_objective_and_every_objective_a_stage() -> None:
    from engine.train.objectives import OBJECTIVES

    assert set(OBJECTIVES) == set(TRAINED_STAGES) and set(TRAINED_STAGES) <= set(STAGES)
    assert OBJECTIVES["dpo"].curves and not OBJECTIVES["sft"].curves
    pair = {"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5, 6]}
    assert OBJECTIVES["dpo"].lengths([pair]) == [5, 5] and OBJECTIVES["dpo"].sequences == 2  # both, padded alike
    assert OBJECTIVES["sft"].lengths([{"input_ids": [1, 2, 3]}]) == [3] and OBJECTIVES["sft"].sequences == 1


def test_the_preference_options_reach_trls_config_under_its_names(tmp_path: Path) -> None:
    from engine.jobs.rundir import RunDir
    from engine.train.preference import stage_arguments

    run = parse_config(config(tmp_path, stage="dpo", beta=0.3, loss_type="robust", label_smoothing=0.1))
    args = stage_arguments(run, RunDir(tmp_path / "run"), has_eval=False)
    assert (args.beta, args.loss_type, args.loss_weights, args.label_smoothing) == (0.3, ["robust"], None, 0.1)
    assert args.max_length is None  # the engine cut the pairs at cutoff_len; TRL cuts nothing more
    rpo = stage_arguments(parse_config(config(tmp_path, stage="dpo", rpo_alpha=0.5)), RunDir(tmp_path / "run"), False)
    assert (rpo.loss_type, rpo.loss_weights) == (["sigmoid", "sft"], [1.0, 0.5])  # RPO: DPO + 0.5 x the chosen NLL


def test_the_reference_free_stages_take_full_and_freeze(tmp_path: Path) -> None:
    assert parse_config(config(tmp_path, "full", stage="orpo")).method.name == "full"
    assert parse_config(config(tmp_path, "freeze", stage="simpo")).train.stage == "simpo"


def test_orpo_simpo_and_kto_options_reach_their_trl_configs(tmp_path: Path) -> None:
    from trl import KTOConfig
    from trl.experimental.cpo import CPOConfig
    from trl.experimental.orpo import ORPOConfig

    from engine.jobs.rundir import RunDir
    from engine.train.preference import stage_arguments

    run = RunDir(tmp_path / "run")
    orpo = stage_arguments(parse_config(config(tmp_path, stage="orpo", beta=0.2, cutoff_len=128)), run, False)
    assert isinstance(orpo, ORPOConfig) and (orpo.beta, orpo.max_length) == (0.2, 128)
    simpo = stage_arguments(parse_config(config(tmp_path, stage="simpo", beta=2.0, simpo_gamma=0.8)), run, False)
    assert isinstance(simpo, CPOConfig)
    assert (simpo.loss_type, simpo.cpo_alpha, simpo.beta, simpo.simpo_gamma) == ("simpo", 0.0, 2.0, 0.8)
    kto = stage_arguments(parse_config(config(tmp_path, stage="kto", desirable_weight=1.3, undesirable_weight=0.7)),
                          run, False)
    assert isinstance(kto, KTOConfig) and (kto.desirable_weight, kto.undesirable_weight) == (1.3, 0.7)
    assert kto.train_sampling_strategy == "sequential"  # its KL estimate pairs each row with its batch neighbours


def test_a_kto_row_is_tokenized_as_the_same_reply_of_a_pair(tokenizer: Any) -> None:
    from engine.data.unpaired import normalise_unpaired, tokenize_unpaired

    pair = normalise_pairs([STRINGS], "pairs.json")[0]
    [tokens], _ = tokenize_pairs([pair], tokenizer, 512, "truncate")
    rows = normalise_unpaired([{"prompt": STRINGS["prompt"], "completion": STRINGS[side], "label": side == "chosen"}
                               for side in ("chosen", "rejected")], "kto.json")
    good, bad = tokenize_unpaired(rows, tokenizer, 512, "truncate")[0]
    assert good == {"prompt_ids": tokens["prompt_ids"], "completion_ids": tokens["chosen_ids"], "label": True}
    assert bad == {"prompt_ids": tokens["prompt_ids"], "completion_ids": tokens["rejected_ids"], "label": False}


def test_the_inspection_shows_one_pair_rendered_with_each_replys_trained_span(tmp_path: Path, tokenizer: Any) -> None:
    """inspect-data on a pairs file: the pair format and rows, the first pair's chosen and rejected sides rendered
    through the template, each side's trained span exactly its reply's tokens (what tokenize_pairs trains), the
    lengths a preference run measures; the page shows the two sides side by side."""
    from engine.data.inspect_pairs import inspect_preference, is_preference_file
    from engine.data.sample import read_sample
    from webui.forms.datasets import example_segments

    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(STRINGS) + "\n" for _ in range(3)), encoding="utf-8")
    sample = read_sample(path)
    assert is_preference_file(sample)
    report = inspect_preference(DataConfig(path=str(path)), sample, tokenizer, cutoff_len=512)
    assert (report["format"], report["rows"], report["over_cutoff"]) == ("preference", 3, 0)
    [tokens], _ = tokenize_pairs(normalise_pairs([STRINGS], "pairs.jsonl"), tokenizer, 512, "truncate")
    assert report["lengths"] == [len(tokens["prompt_ids"]) + max(len(tokens["chosen_ids"]),
                                                                 len(tokens["rejected_ids"]))] * 3
    for side in ("chosen", "rejected"):
        trained = [text for text, label in example_segments({"example": report["pair"][side]}) if label]
        assert len(trained) == 1 and trained[0] == tokenizer.decode(tokens[f"{side}_ids"])
        assert trained[0].startswith(STRINGS[side])
    kto = tmp_path / "kto.jsonl"
    kto.write_text("".join(json.dumps({"prompt": "Hi", "completion": c, "label": c == "Hello."}) + "\n"
                           for c in ("Hello.", "Go away.")), encoding="utf-8")
    shown = inspect_preference(DataConfig(path=str(kto)), read_sample(kto), tokenizer)
    assert shown["format"] == "kto" and shown["pair"]["label"] is True and "completion" in shown["pair"]
