"""The chat's sampling settings are one schema (engine.sampling.SamplingConfig): the Chat tab's widgets, the chat
worker's requests and the terminal chat's flags all start from its defaults, and a value outside its ranges is
refused in one sentence that names the field, wherever it comes from."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import gradio as gr
import pytest

from engine.chat.cli import add_sampling_flags, sampling_from_args
from engine.chat.session import ChatError, Generation
from engine.chat.worker import Worker
from engine.sampling import SamplingConfig, SamplingError, parse_sampling
from webui.forms.sampling import SAMPLING_OPTIONS, to_sampling
from webui.tabs import chat

DEFAULTS = SamplingConfig()


class RecordingSession:
    """A chat session that records the settings each generate request reaches it with, and answers nothing."""

    def __init__(self) -> None:
        self.sampling: list[SamplingConfig] = []

    def generate(self, _messages: Any, _adapter: Any, _system: Any, _reply: Generation, _tools: Any,
                 sampling: SamplingConfig) -> Any:
        self.sampling.append(sampling)
        return iter(())


def ask_worker(**fields: Any) -> tuple[RecordingSession, dict]:
    """One generate request with `fields` through the worker's protocol: the session, and the worker's answer."""
    out, session = io.StringIO(), RecordingSession()
    Worker(out, session).handle_line(json.dumps({"id": 1, "op": "generate", "messages": [], **fields}))
    return session, json.loads(out.getvalue().splitlines()[-1])


def cli_sampling(*flags: str) -> SamplingConfig:
    parser = argparse.ArgumentParser()
    add_sampling_flags(parser)
    return sampling_from_args(parser.parse_args(list(flags)))


def page_widgets() -> list[gr.components.Component]:
    with gr.Blocks():
        return chat.build_sampling()


def test_page_worker_and_terminal_start_from_the_same_defaults() -> None:
    widgets = page_widgets()
    assert [widget.elem_id for widget in widgets] == [
        "wb-chat-max-new-tokens", "wb-chat-temperature", "wb-chat-top-p", "wb-chat-top-k",
        "wb-chat-repetition-penalty", "wb-chat-seed"]
    assert to_sampling([widget.value for widget in widgets]) == DEFAULTS
    session, answer = ask_worker()
    assert answer["kind"] == "reply" and session.sampling == [DEFAULTS]
    assert cli_sampling() == DEFAULTS
    assert DEFAULTS.max_new_tokens == 256 and DEFAULTS.greedy  # greedy unless a temperature is given


def test_a_setting_given_changes_only_that_field_everywhere() -> None:
    expected = DEFAULTS.model_copy(update={"temperature": 0.7, "max_new_tokens": 64})
    assert cli_sampling("--temperature", "0.7", "--max-new-tokens", "64") == expected
    assert ask_worker(temperature=0.7, max_new_tokens=64)[0].sampling == [expected]
    values = [expected.model_dump()[field.name] for field in SAMPLING_OPTIONS]
    assert to_sampling(values) == expected and not expected.greedy


def test_the_page_widgets_bounds_lie_inside_the_schemas() -> None:
    for field, widget in zip(SAMPLING_OPTIONS, page_widgets(), strict=True):
        if field.slider:
            low, high, _ = field.slider
            parse_sampling({field.name: low}), parse_sampling({field.name: high})  # both ends are accepted
            assert (widget.minimum, widget.maximum) == (low, high)
        assert widget.value == field.default == DEFAULTS.model_dump()[field.name]


@pytest.mark.parametrize(("fields", "sentence"), [
    ({"temperature": 11}, "temperature is 11: input should be less than or equal to 10."),
    ({"top_p": 0}, "top_p is 0: input should be greater than 0."),
    ({"max_new_tokens": 0}, "max_new_tokens is 0: input should be greater than or equal to 1."),
    ({"max_new_tokens": "many"}, "max_new_tokens is 'many': input should be a valid integer."),
    ({"repetition_penalty": True}, "repetition_penalty is True: input should be a valid number."),
])
def test_an_out_of_range_value_is_one_sentence_that_names_the_field(fields: dict, sentence: str) -> None:
    with pytest.raises(SamplingError) as refused:
        parse_sampling(fields)
    assert str(refused.value) == sentence
    session, answer = ask_worker(**fields)
    assert answer == {**answer, "kind": "status", "state": "failed", "error": sentence, "id": 1}
    assert session.sampling == []  # refused before anything was generated


def test_the_terminal_and_the_page_refuse_in_the_same_words() -> None:
    with pytest.raises(ChatError, match=r"^top_k is -1: input should be greater than or equal to 0\.$"):
        cli_sampling("--top-k", "-1")
    with pytest.raises(SamplingError, match=r"^top_k is -1: input should be greater than or equal to 0\.$"):
        to_sampling([256, 0.0, 1.0, -1, 1.0, 0])
    with pytest.raises(SamplingError, match=r"^max_new_tokens is 1\.5: input should be a valid integer\.$"):
        to_sampling([1.5, 0.0, 1.0, 50, 1.0, 0])


def test_an_empty_seed_box_draws_a_new_seed_each_reply() -> None:
    assert to_sampling([256, 1.0, 1.0, 50, 1.0, None]).seed is None
    assert parse_sampling({"max_new_tokens": None}).max_new_tokens == DEFAULTS.max_new_tokens
