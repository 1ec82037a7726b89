"""A config value pydantic refuses, in the visitor's language: the English stays pydantic's own message (the CLI and
the existing sentences), and the page words it from the error's type and context (engine.value.*), naming the
field; a type this table does not know, or a pydantic that words it otherwise, stays English as written."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.config import ConfigError, parse_config
from engine.config_read import value_problem
from engine.sampling import SamplingError, parse_sampling
from webui.i18n import sentence, sentences

ZH = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={})


def refused(tmp_path: Path, section: str, key: str, value: object) -> ConfigError:
    data = tmp_path / "data.json"
    data.write_text('[{"instruction": "a", "output": "b"}]')
    raw = {"model": {"name_or_path": "org/model"}, "method": {"name": "lora"}, "data": {"path": str(data)},
           "train": {"max_steps": 1}, "output_dir": str(tmp_path / "run")}
    raw[section][key] = value
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, source="form")
    return caught.value


@pytest.mark.parametrize(("section", "key", "value", "kind", "english", "chinese"), [
    ("train", "learning_rate", 0, "greater_than", "input should be greater than 0", "应大于 0"),
    ("train", "max_steps", -1, "greater_than_equal", "input should be greater than or equal to 1",
     "应大于或等于 1"),
    ("data", "val_size", 1.5, "less_than", "input should be less than 1", "应小于 1"),
    ("data", "format", "csv", "literal_error", "input should be 'auto', 'alpaca', 'sharegpt', 'openai', "
     "'prompt_completion' or 'text'", "应为 'auto', 'alpaca', 'sharegpt', 'openai', 'prompt_completion' 或 'text'"),
    ("method", "lora_dropout", 2, "less_than", "input should be less than 1", "应小于 1"),
    ("train", "batch_size", "two", "int_parsing",
     "input should be a valid integer, unable to parse string as an integer", "应为整数，这段文字无法解析为整数"),
    ("train", "batch_size", 1.5, "int_from_float",
     "input should be a valid integer, got a number with a fractional part", "应为整数，而它带有小数部分"),
    ("train", "learning_rate", "fast", "float_parsing",
     "input should be a valid number, unable to parse string as a number", "应为数字，这段文字无法解析为数字"),
])
def test_a_refused_value_names_its_field_in_chinese(tmp_path, section, key, value, kind, english, chinese):
    error = refused(tmp_path, section, key, value)
    [issue] = error.issues
    assert issue == f"'{section}.{key}' is {value!r}: {english}."  # pydantic's own message, as the CLI says it
    assert issue.key == f"engine.value.{kind}"
    assert sentences(ZH, error) == f"'{section}.{key}' 为 {value!r}：{chinese}。"


def test_a_choice_a_list_item_and_the_chat_settings_are_worded_too(tmp_path):
    [issue] = refused(tmp_path, "method", "name", "lorra").issues
    assert issue.startswith("'method.name' is 'lorra': input should be 'lora', ") and issue.endswith(" or 'freeze'.")
    shown = sentence(ZH, issue)
    assert shown.startswith("'method.name' 为 'lorra'：应为 'lora', ") and shown.endswith(" 或 'freeze'。")

    data = tmp_path / "data.json"
    [issue] = refused(tmp_path, "data", "path", [{"path": str(data), "fraction": 0}]).issues
    assert issue == "'fraction' in data.path item 1 is 0: input should be greater than 0."
    assert sentence(ZH, issue) == "data.path 的第 1 项中的 'fraction' 为 0：应大于 0。"
    [issue] = refused(tmp_path, "data", "path", [{"path": str(data), "fraction": 11}]).issues
    assert issue.key == "engine.value.less_than_equal"
    assert sentence(ZH, issue) == "data.path 的第 1 项中的 'fraction' 为 11：应小于或等于 10。"
    [issue] = refused(tmp_path, "data", "path", [{"path": str(data), "fromat": "alpaca"}]).issues
    assert sentence(ZH, issue) == "未知的键 'fromat'（位于 data.path 的第 1 项）：请删除它或检查拼写。"

    with pytest.raises(SamplingError) as caught:  # the Chat tab's sampling sliders
        parse_sampling({"top_p": 0})
    assert str(caught.value) == "top_p is 0: input should be greater than 0."
    assert sentence(ZH, caught.value) == "top_p 为 0：应大于 0。"


def test_a_type_without_a_wording_or_another_pydantic_message_stays_english():
    other = {"type": "greater_than", "msg": "Input must exceed 0", "input": 0, "ctx": {"gt": 0}}
    said = value_problem("'x'", other, lower=str.lower)
    assert said == "'x' is 0: input must exceed 0." and getattr(said, "key", None) is None
    unknown = {"type": "url_parsing", "msg": "Input should be a valid URL", "input": "h", "ctx": {}}
    assert sentence(ZH, value_problem("'x'", unknown, lower=str.lower)) == "'x' is 'h': input should be a valid url."
