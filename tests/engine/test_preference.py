"""DPO with LoRA through what `python launch.py train` runs (tests.cli.train_in_process, in the test's process: the
command's process is tested in tests/engine/test_train.py and test_preference_stages.py) on a tiny real Llama, from
string pairs and message-list pairs (two files of one run: one run covers both shapes, keeping the test short). The
test measures the preference itself: the implicit reward of a reply is log pi(reply) - log pi_ref(reply) (pi the
trained adapter, pi_ref the same model with the adapter disabled, which is what TRL uses as the reference), and after
training the chosen reply's reward beats the rejected one's on at least 90% of the pairs it trained on and of HELD_OUT
pairs it never saw (measured: 1.0 on both from 0.25 before, with LoRA and with QLoRA; 4-bit base, the test measures
the adapter on the unquantized base)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from engine.data.pipeline import IGNORE_INDEX, tokenize_rows
from engine.data.preference import normalise_pairs, tokenize_pairs
from engine.jobs.events import Metrics, final_status, read_events
from engine.jobs.rundir import RunDir
from tests.cli import train_in_process, write_config, write_rows
from tests.engine.test_templates import FAMILIES, family_tokenizer
from tests.engine.test_trackers import assert_curves_reach_tensorboard
from webui.jobs.runs import read_info

PROMPTS = ["Who are you?", "What can you do?", "Hello world!", "What is the capital of France?",
           "Two plus two is four.", "Why is the sky blue?", "Goodbye.", "Can you help with code?"]
# Replies of about the same length, so that the base model's ranking of them is about chance.
GOOD = ["I am a helpful assistant.", "I can answer questions.", "Hello! I can help.", "Paris is the capital.",
        "Yes, two plus two is four.", "Rayleigh scattering.", "Goodbye, have a good day.", "Yes, I can help."]
BAD = ["The lazy dog jumps over.", "Brown fox, quick fox.", "The fox is lazy today.", "The dog is over there.",
       "Quick brown dog jumps.", "The fox jumps, the dog.", "Lazy brown fox jumps.", "Over the lazy fox dog."]
PAIRS = [{"prompt": p, "chosen": g, "rejected": b} for p, g, b in zip(PROMPTS, GOOD, BAD, strict=True)]
# Pairs no run trains on: new prompts, and replies of the same two kinds as the trained ones (an assistant's
# answer chosen over a word salad of foxes and dogs), each reply itself never seen.
HELD_OUT = [{"prompt": p, "chosen": g, "rejected": b} for p, g, b in [
    ("Who can help me?", "I can help with questions.", "The brown dog jumps over."),
    ("Hello!", "Hello! I am an assistant.", "Lazy fox, quick dog."),
    ("What is the capital?", "Paris is the capital of France.", "The fox is over the dog."),
    ("Can you write text?", "Yes, I can write text.", "Quick fox, lazy brown dog."),
    ("Is two plus two four?", "Yes, two plus two is four.", "The dog jumps, the fox."),
    ("Why is it blue?", "The sky is blue, Rayleigh scattering.", "Brown dog over the lazy fox."),
    ("Who is the assistant?", "I am a helpful assistant.", "The quick fox is lazy."),
    ("Goodbye!", "Goodbye, I can help again.", "Over the dog, the brown fox."),
]]
STRING_PAIRS = PAIRS[:4]
MESSAGE_PAIRS = [{"prompt": [{"role": "user", "content": row["prompt"]}],
                  "chosen": [{"role": "assistant", "content": row["chosen"]}],
                  "rejected": [{"role": "assistant", "content": row["rejected"]}]} for row in PAIRS[4:]]
TRAIN = {"stage": "dpo", "max_steps": 5, "batch_size": 4, "learning_rate": 2e-2, "beta": 0.1,
         "lr_scheduler_type": "constant", "cutoff_len": 64}


def reply_logps(model: Any, rows: list[dict], side: str) -> torch.Tensor:
    """Sum of the log-probabilities of each row's `side` reply given its prompt (one forward pass over the rows,
    padded on the right, which a causal model's earlier positions never see)."""
    sequences = [row["prompt_ids"] + row[f"{side}_ids"] for row in rows]
    longest = max(map(len, sequences))
    ids = torch.tensor([seq + [0] * (longest - len(seq)) for seq in sequences])
    mask = torch.tensor([[1] * len(seq) + [0] * (longest - len(seq)) for seq in sequences])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
    sums = []
    for i, row in enumerate(rows):
        start, reply = len(row["prompt_ids"]), row[f"{side}_ids"]
        sums.append(logps[i, start - 1: start - 1 + len(reply)].gather(-1, torch.tensor(reply)[:, None]).sum())
    return torch.stack(sums)


def preference(run: RunDir, pairs: list[dict]) -> dict[str, float]:
    """The base model's own ranking (before), and the trained adapter's implicit-reward accuracy and mean margin."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_name = json.loads((run.adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_name), run.adapter).eval()
    rows, _ = tokenize_pairs(normalise_pairs(pairs, "pairs"), AutoTokenizer.from_pretrained(run.adapter), 64,
                             "truncate")
    with model.disable_adapter():
        ref_chosen, ref_rejected = reply_logps(model, rows, "chosen"), reply_logps(model, rows, "rejected")
    margin = (reply_logps(model, rows, "chosen") - ref_chosen) - (reply_logps(model, rows, "rejected") - ref_rejected)
    return {"before": (ref_chosen > ref_rejected).float().mean().item(),
            "accuracy": (margin > 0).float().mean().item(), "margin": margin.mean().item()}


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_dpo_with_lora_learns_to_prefer_the_chosen_replies(method, memorise_model, tmp_path):
    strings = write_rows(tmp_path / "strings.json", STRING_PAIRS)
    messages = write_rows(tmp_path / "messages.json", MESSAGE_PAIRS)
    config = write_config(tmp_path / "run.yaml", memorise_model, strings, tmp_path / "run", train=TRAIN,
                          method={"name": method}, data_options={"path": [str(strings), str(messages)]})
    result = train_in_process(str(config))
    assert result.returncode == 0, result.stderr[-2000:]

    run = RunDir(tmp_path / "run")
    events = read_events(run.events)
    assert final_status(events).state == "completed"
    curves = [event.values for event in events if isinstance(event, Metrics)]
    assert {"loss", "rewards/margins", "rewards/accuracies"} <= set(curves[-1])  # TRL's figures as named curves
    assert "train/rewards/margins" in assert_curves_reach_tensorboard(run)  # the default tracker has every curve
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in run.adapter.iterdir()}
    assert run.read_metrics()["stage"] == "dpo"
    listed = read_info(run)  # the Runs tab's row of a DPO run
    assert (listed.state, listed.method, listed.damaged) == ("completed", method, False)

    assert "strings.json: 4 rows (preference), messages.json: 4 rows (preference)" in result.stdout
    measured = preference(run, STRING_PAIRS + MESSAGE_PAIRS)
    assert measured["before"] <= 0.75, measured  # the base ranks the pairs about by chance
    assert measured["accuracy"] >= 0.9 and measured["margin"] > 0, measured
    held_out = preference(run, HELD_OUT)  # pairs it never saw, of the same two kinds
    assert held_out["before"] <= 0.75, held_out
    assert held_out["accuracy"] >= 0.9 and held_out["margin"] > 0, held_out


def test_a_preference_stage_on_sft_rows_stops_before_the_model_with_one_sentence(memorise_model, tmp_path):
    data = write_rows(tmp_path / "sft.json", [{"instruction": "Hi", "output": "Hello."}])
    config = write_config(tmp_path / "run.yaml", memorise_model, data, tmp_path / "run", train=TRAIN)
    result = train_in_process(str(config))
    assert result.returncode != 0
    assert "sft.json holds alpaca rows (SFT's), not preference pairs: a preference stage needs prompt, chosen" \
        in result.stderr


MULTI_TURN_PAIR = {"system": "Be brief.", "prompt": [
    {"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"}],
    "chosen": "Paris is the capital of France.", "rejected": "The quick brown fox."}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_under_real_templates_each_reply_is_exactly_what_sft_trains(family: str) -> None:
    """The verbatim templates of tests/chat_templates: chosen and rejected alike are the tokens SFT labels for
    the same conversation's last reply, its end-of-turn marker included, after the same prompt tokens."""
    tokenizer = family_tokenizer(family)
    tools = {"tools": []} if family == "hermes-3-tool-use" else {}  # a tool-use template needs a tools list, as in SFT
    pair = normalise_pairs([{**MULTI_TURN_PAIR, **tools}], "pairs.json")[0]
    [tokens], _ = tokenize_pairs([pair], tokenizer, 2048, "drop")  # the tool-use template's system prompt is long
    for side in ("chosen", "rejected"):
        row = {"messages": [*pair["messages"], pair[side]], "tools": pair.get("tools")}
        [sft], _ = tokenize_rows([row], tokenizer, 2048, "drop")
        start, reply = len(tokens["prompt_ids"]), tokens[f"{side}_ids"]
        assert sft["input_ids"][:start] == tokens["prompt_ids"]
        assert sft["labels"][start: start + len(reply)] == reply and sft["labels"][start - 1] == IGNORE_INDEX
        assert all(label == IGNORE_INDEX for label in sft["labels"][start + len(reply):])
        assert FAMILIES[family].eot in tokenizer.decode(reply)
