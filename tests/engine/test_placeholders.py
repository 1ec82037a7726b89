"""`{{name}}` placeholders (LLaMA-Factory's identity.json): listed by the inspection, filled from data.replace in
every text field before templating, literally, and a row left unfilled is refused with one sentence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.config import ConfigError, DataConfig, RunConfig, load_config, parse_config
from engine.data.pipeline import IGNORE_INDEX, build_splits, load_rows
from engine.data.placeholders import fill_placeholders, find_placeholders
from engine.jobs.failures import DataError
from tests.cli import launch, train_in_process, write_config, write_rows

IDENTITY = [  # as LLaMA-Factory's data/identity.json writes it
    {"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "What is your name?", "input": "", "output": "You may refer to me as {{name}}."},
]
FILLED = {"name": "Aria", "author": "Ada Labs"}


def identity_file(folder: Path, rows: list[dict] = IDENTITY, name: str = "identity.json") -> Path:
    return write_rows(folder / name, rows)


def test_inspection_lists_the_placeholders_with_their_counts(tmp_path: Path) -> None:
    """`inspect-data` names each placeholder once, in order of first appearance, with how often it appears and
    in how many rows; `{{ spaced }}` (Jinja code) and a tool call's JSON are not placeholders."""
    code = {"instruction": "A Jinja loop?", "output": "{% for x in xs %}{{ x }}{% endfor %} shows {{ title }}."}
    path = identity_file(tmp_path, IDENTITY + [code])
    result = launch("inspect-data", "--data", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["placeholders"] == [
        {"name": "name", "count": 3, "rows": 3}, {"name": "author", "count": 2, "rows": 2}]
    tool_call = {"messages": [
        {"role": "user", "content": "Look {{user}} up."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "find", "arguments": {"who": "{{user}}", "by": "{{tool}}"}}}]},
        {"role": "tool", "content": "{{user}} is {{tool}}-free."},
        {"role": "assistant", "content": "Done, {{user}}."}]}
    assert find_placeholders(load_rows(DataConfig(path=str(write_rows(tmp_path / "t.json", [tool_call])),
                                                  replace={"user": "U", "tool": "T"}))[0]) == []  # all filled
    rows, _ = load_rows(DataConfig(path=str(tmp_path / "t.json"), replace={"user": "{{user}}", "tool": "{{tool}}"}))
    assert find_placeholders(rows) == [{"name": "user", "count": 3, "rows": 1}, {"name": "tool", "count": 1, "rows": 1}]


def test_every_text_field_is_filled_and_tool_json_is_not(tmp_path: Path) -> None:
    alpaca = {"system": "You are {{name}}.", "history": [["Hi {{name}}", "Hello from {{name}}"]],
              "instruction": "Who made {{name}}?", "input": "Say {{author}}.", "output": "{{author}} made {{name}}."}
    rows, _ = load_rows(DataConfig(path=str(write_rows(tmp_path / "a.json", [alpaca])), replace=FILLED))
    assert [m["content"] for m in rows[0]["messages"]] == [
        "You are Aria.", "Hi Aria", "Hello from Aria", "Who made Aria?\n\nSay Ada Labs.", "Ada Labs made Aria."]
    chat = {"messages": [
        {"role": "user", "content": "Call {{name}}."},
        {"role": "assistant", "content": "On it, {{author}}.",
         "tool_calls": [{"type": "function", "function": {"name": "call", "arguments": {"who": "{{name}}"}}}]},
        {"role": "tool", "content": "{{name}} answered."},
        {"role": "assistant", "content": "{{name}} says hi.", "reasoning_content": "{{name}} is asked for."}],
        "tools": [{"type": "function", "function": {"name": "call", "description": "Calls {{name}}."}}]}
    rows, _ = load_rows(DataConfig(path=str(write_rows(tmp_path / "c.json", [chat])), replace=FILLED))
    user, call, result, reply = rows[0]["messages"]
    assert (user["content"], call["content"]) == ("Call Aria.", "On it, Ada Labs.")
    assert call["tool_calls"][0]["function"]["arguments"] == {"who": "{{name}}"}  # JSON stays as written
    assert (result["content"], reply["content"], reply["reasoning_content"]) == (
        "Aria answered.", "Aria says hi.", "Aria is asked for.")
    assert rows[0]["tools"][0]["function"]["description"] == "Calls {{name}}."
    text = write_rows(tmp_path / "p.json", [{"text": "{{name}} was built by {{author}}."}])
    assert load_rows(DataConfig(path=str(text), replace=FILLED))[0] == [{"text": "Aria was built by Ada Labs."}]


def test_filling_is_literal() -> None:
    """A value goes in as written: no format fields, no regex group references, no second round of filling."""
    values = {"name": r"{author} \1 \g<0> %s {0}", "author": "{{name}}"}
    rows = [{"messages": [{"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "I am {{name}} by {{author}}."}]}]
    filled = fill_placeholders(rows, values, "x.json")
    assert filled[0]["messages"][1]["content"] == r"I am {author} \1 \g<0> %s {0} by {{name}}."
    assert rows[0]["messages"][1]["content"] == "I am {{name}} by {{author}}."  # the input rows are not changed


UNFILLED = ("identity.json row 2 holds the placeholder {{author}}, which nothing fills: give it a value under "
            "data.replace (author: ...) or in the Train tab's field for it (the placeholder itself trains it as "
            "written).")


def test_an_unfilled_placeholder_is_refused_before_the_model_loads(tmp_path: Path, tiny_model: Path) -> None:
    rows = [IDENTITY[2], IDENTITY[1], IDENTITY[0]]  # row 1 holds only {{name}}, row 2 {{author}} too
    config = write_config(tmp_path / "run.yaml", tiny_model, identity_file(tmp_path, rows), tmp_path / "run",
                          data_options={"replace": {"name": "Aria"}})
    result = train_in_process(str(config))  # what `launch.py train` runs, in this process
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {UNFILLED}"
    status = json.loads((tmp_path / "run" / "status.json").read_text(encoding="utf-8"))
    assert (status["state"], status["error"]) == ("failed", UNFILLED)
    assert not (tmp_path / "run" / "adapter").exists()
    with pytest.raises(DataError) as error:  # the same sentence wherever the rows are read
        load_rows(DataConfig(path=str(tmp_path / "identity.json"), replace={"name": "Aria"}))
    assert str(error.value) == UNFILLED


def labelled_text(row: dict[str, list[int]], tokenizer: Any) -> str:
    return tokenizer.decode([token for token, label in zip(row["input_ids"], row["labels"], strict=True)
                             if label != IGNORE_INDEX])


def test_a_filled_run_trains_the_filled_text(tmp_path: Path, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from engine.data.tokens import ensure_chat_template

    config_path = write_config(tmp_path / "run.yaml", tiny_model, identity_file(tmp_path), tmp_path / "run",
                               data_options={"replace": FILLED}, train={"max_steps": 1})
    config = load_config(config_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ensure_chat_template(tokenizer)
    train, _, _ = build_splits(config, tokenizer)
    labels = [labelled_text(row, tokenizer) for row in train]
    assert labels == ["Hello! I am Aria, an AI assistant developed by Ada Labs.<|im_end|>",
                      "I am Aria, an AI assistant developed by Ada Labs.<|im_end|>",
                      "You may refer to me as Aria.<|im_end|>"]
    assert not any("{{" in tokenizer.decode(row["input_ids"]) for row in train)
    result = train_in_process(str(config_path))  # what `launch.py train` runs, in this process
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["data"]["replace"] == FILLED  # the run keeps what it filled


def test_replace_names_and_values_are_checked(tmp_path: Path) -> None:
    data = identity_file(tmp_path)
    raw = {"model": {"name_or_path": "m"}, "data": {"path": str(data), "replace": {"my name": "x", "year": 2025}},
           "output_dir": str(tmp_path / "run")}
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert error.value.issues == ["data.replace names 'my name', which is no placeholder name: use letters, digits "
                                  "and _ as the data writes them between double braces, like {{name}}."]
    raw["data"]["replace"] = {"year": 2025, "name": "Aria"}
    assert parse_config(raw).data.replace == {"year": "2025", "name": "Aria"}  # YAML's number is the text written
    assert RunConfig.model_fields["data"].annotation.model_fields["replace"].description
