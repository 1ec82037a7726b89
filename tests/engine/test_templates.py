"""Masking under the real chat templates of eight model families (tests/chat_templates/, verbatim copies; see
SOURCES.md there): the labelled tokens are exactly each assistant reply as the template writes it plus the
template's end-of-turn marker, token for token, and every other token is -100. The expected strings are written
by hand from reading each template, never computed by the code under test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.data.masking import render_with_spans
from engine.data.pipeline import IGNORE_INDEX, template_notes, tokenize_rows
from engine.data.tokens import CHATML_EOS_TEMPLATE, CHATML_TEMPLATE
from engine.jobs.failures import DataError
from tests.tiny import build_tiny_llama, build_tokenizer

TEMPLATES = Path(__file__).resolve().parents[1] / "chat_templates"
QWEN_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")


@dataclass(frozen=True)
class Family:
    template: str  # file in tests/chat_templates/
    tokens: dict[str, Any]  # build_tokenizer options: the template's special tokens as single tokens, bos, eos
    eot: str  # the end-of-turn marker the template writes after a reply, read off the template


FAMILIES = {
    "llama-3.1": Family("llama-3.1-instruct.jinja", {
        "extra_special_tokens": ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                                 "<|eom_id|>", "<|python_tag|>"),
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, "<|eot_id|>"),
    "qwen2.5": Family("qwen2.5-instruct.jinja", {
        "extra_special_tokens": QWEN_TOKENS, "bos_token": None, "eos_token": "<|im_end|>"}, "<|im_end|>"),
    "qwq": Family("qwq-32b.jinja", {
        "extra_special_tokens": (*QWEN_TOKENS, "<think>", "</think>"), "bos_token": None, "eos_token": "<|im_end|>"},
        "<|im_end|>"),
    "gemma-2": Family("gemma-2-it.jinja", {
        "extra_special_tokens": ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
        "bos_token": "<bos>", "eos_token": "<eos>"}, "<end_of_turn>"),
    "mistral-nemo": Family("mistral-nemo-instruct.jinja", {
        "extra_special_tokens": ("[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]",
                                 "[TOOL_RESULTS]", "[/TOOL_RESULTS]")}, "</s>"),
    "phi-3.5": Family("phi-3.5-mini-instruct.jinja", {
        "extra_special_tokens": ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"),
        "eos_token": "<|endoftext|>"}, "<|end|>"),
    "hermes-3-tool-use": Family("hermes-3-tool-use.jinja", {
        "extra_special_tokens": ("<|begin_of_text|>", *QWEN_TOKENS), "bos_token": "<|begin_of_text|>",
        "eos_token": "<|im_end|>"}, "<|im_end|>"),
    "smollm2": Family("smollm2-instruct.jinja", {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
                      "<|im_end|>"),
}

SYSTEM = {"role": "system", "content": "Be brief."}
USER_1 = {"role": "user", "content": "Who are you?"}
USER_2 = {"role": "user", "content": "What is the capital of France?"}
REPLY_1 = {"role": "assistant", "content": "I am a helpful assistant."}
REPLY_2 = {"role": "assistant", "content": "Paris is the capital of France."}
THOUGHT_1 = "The user asks who I am."
THOUGHT_2 = "France: Paris."
THINKING_1 = {"role": "assistant", "content": f"<think>\n{THOUGHT_1}\n</think>\n\nI am a helpful assistant."}
THINKING_2 = {"role": "assistant", "content": f"<think>\n{THOUGHT_2}\n</think>\n\nParis is the capital of France."}
FIELD_1 = {**REPLY_1, "reasoning_content": THOUGHT_1}
FIELD_2 = {**REPLY_2, "reasoning_content": THOUGHT_2}
CONVERSATIONS = {
    "single": [USER_1, REPLY_1],
    "single+system": [SYSTEM, USER_1, REPLY_1],
    "multi": [USER_1, REPLY_1, USER_2, REPLY_2],
    "multi+system": [SYSTEM, USER_1, REPLY_1, USER_2, REPLY_2],
    "reasoning": [SYSTEM, USER_1, THINKING_1, USER_2, THINKING_2],
    "reasoning_content": [SYSTEM, USER_1, FIELD_1, USER_2, FIELD_2],
}
A1, A2 = REPLY_1["content"], REPLY_2["content"]
R1, R2 = THINKING_1["content"], THINKING_2["content"]


def plain(eot: str) -> dict[str, list[str]]:
    """Templates that write every reply as it is: the reply, then the end-of-turn marker."""
    return {"single": [A1 + eot], "single+system": [A1 + eot], "multi": [A1 + eot, A2 + eot],
            "multi+system": [A1 + eot, A2 + eot], "reasoning": [R1 + eot, R2 + eot],
            "reasoning_content": [R1 + eot, R2 + eot]}


EXPECTED_REPLIES: dict[str, dict[str, list[str]]] = {
    "llama-3.1": plain("<|eot_id|>"),
    "qwen2.5": plain("<|im_end|>"),
    # QwQ cuts every reply but the last to the text after </think>; the last keeps its reasoning
    "qwq": {**plain("<|im_end|>"), "reasoning": [A1 + "<|im_end|>", R2 + "<|im_end|>"],
            "reasoning_content": [A1 + "<|im_end|>", R2 + "<|im_end|>"]},
    "gemma-2": plain("<end_of_turn>"),
    "mistral-nemo": plain("</s>"),
    "phi-3.5": plain("<|end|>"),  # not the <|endoftext|> the template appends after the last message
    "smollm2": plain("<|im_end|>"),
}

# The whole render of "multi+system", by hand: where each template puts the system prompt and what it adds.
EXPECTED_TEXT = {
    "llama-3.1": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nI am a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nParis is the capital of France.<|eot_id|>"
    ),
    "qwen2.5": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\nI am a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nParis is the capital of France.<|im_end|>\n"
    ),
    "gemma-2": (  # the system role is rejected: its text opens the first user turn
        "<bos><start_of_turn>user\nBe brief.\n\nWho are you?<end_of_turn>\n"
        "<start_of_turn>model\nI am a helpful assistant.<end_of_turn>\n"
        "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n"
        "<start_of_turn>model\nParis is the capital of France.<end_of_turn>\n"
    ),
    "mistral-nemo": (  # the system prompt goes where the template puts it when prompting: the last user turn
        "<s>[INST]Who are you?[/INST]I am a helpful assistant.</s>"
        "[INST]Be brief.\n\nWhat is the capital of France?[/INST]Paris is the capital of France.</s>"
    ),
    "phi-3.5": (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nWho are you?<|end|>\n<|assistant|>\nI am a helpful assistant.<|end|>\n"
        "<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\nParis is the capital of France.<|end|>\n"
        "<|endoftext|>"
    ),
}
EXPECTED_TEXT["qwq"] = EXPECTED_TEXT["qwen2.5"]
EXPECTED_TEXT["smollm2"] = EXPECTED_TEXT["qwen2.5"]
# without a system prompt Qwen2.5 and SmolLM2 write their own; it is not trained
DEFAULT_SYSTEM = {
    "qwen2.5": "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
    "smollm2": "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
}


def family_tokenizer(name: str) -> Any:
    family = FAMILIES[name]
    tokenizer = build_tokenizer(**family.tokens)
    tokenizer.chat_template = (TEMPLATES / family.template).read_text(encoding="utf-8")
    return tokenizer


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Any]:
    return {name: family_tokenizer(name) for name in FAMILIES}


def labelled_runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    """Runs of consecutive labelled token ids; every label is -100 or the token's own id."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(ids, labels, strict=True):
        assert label in (token, IGNORE_INDEX)
        if label != IGNORE_INDEX:
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = label != IGNORE_INDEX
    return runs


CASES = [(family, case) for family in EXPECTED_REPLIES for case in CONVERSATIONS]


@pytest.mark.parametrize(("family", "case"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_labels_are_exactly_the_replies_and_their_end_of_turn(family: str, case: str, tokenizers: dict) -> None:
    tokenizer = tokenizers[family]
    (row,), stats = tokenize_rows([{"messages": CONVERSATIONS[case]}], tokenizer, 4096, "truncate")
    expected = EXPECTED_REPLIES[family][case]
    runs = labelled_runs(row["input_ids"], row["labels"])
    assert [tokenizer.decode(run) for run in runs] == expected
    assert runs == [tokenizer(text, add_special_tokens=False)["input_ids"] for text in expected]  # token for token
    assert stats.target_tokens == sum(map(len, runs))
    if case == "multi+system":
        assert tokenizer.decode(row["input_ids"]) == EXPECTED_TEXT[family]
    if case == "multi" and family in DEFAULT_SYSTEM:
        assert tokenizer.decode(row["input_ids"]).startswith(DEFAULT_SYSTEM[family])


def test_every_copied_template_is_in_the_table() -> None:
    copied = {path.name for path in TEMPLATES.glob("*.jinja")}
    assert copied == {family.template for family in FAMILIES.values()}
    sources = (TEMPLATES / "SOURCES.md").read_text(encoding="utf-8")
    assert all(name in sources for name in copied)


@pytest.mark.parametrize("case", list(CONVERSATIONS))
def test_tool_use_template_without_tools_is_one_sentence(case: str, tokenizers: dict) -> None:
    rows = [{"messages": CONVERSATIONS[case]}]
    with pytest.raises(DataError) as caught:
        tokenize_rows(rows, tokenizers["hermes-3-tool-use"], 4096, "truncate", source="chat.jsonl")
    message = str(caught.value)
    assert message.startswith("chat.jsonl row 1") and "tools" in message and "NoneType" in message
    assert message.endswith(".") and "\n" not in message


# ---------------------------------------------------------------------------------------------- prefix parity


def prefix_spans(messages: list[dict], tokenizer: Any) -> list[tuple[int, int]]:
    """The masking before templates that are not prefix-stable were supported (a reply runs from the end of
    the prompt rendered with add_generation_prompt to the end of the conversation rendered through it, trailing
    whitespace dropped): the reference where it worked."""
    def render(part: list[dict], generation: bool = False) -> str:
        return tokenizer.apply_chat_template(part, tokenize=False, add_generation_prompt=generation)

    full, spans = render(messages), []
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            before, through = render(messages[:index], True), render(messages[: index + 1])
            assert full.startswith(before) and full.startswith(through)
            spans.append((len(before), len(through.rstrip())))
    return spans


@pytest.mark.parametrize("family", ["llama-3.1", "qwen2.5", "smollm2", "chatml", "chatml-eos"])
def test_same_spans_as_the_prefix_method_where_it_worked(family: str, tokenizers: dict) -> None:
    if family.startswith("chatml"):
        tokenizer = build_tokenizer()
        tokenizer.chat_template = CHATML_TEMPLATE if family == "chatml" else CHATML_EOS_TEMPLATE
    else:
        tokenizer = tokenizers[family]
    odd = [{"role": "user", "content": "  spaced  "}, {"role": "assistant", "content": "\nTrailing space. "}]
    for messages in [*CONVERSATIONS.values(), odd, odd + [USER_2, REPLY_2]]:
        text, spans = render_with_spans([dict(m) for m in messages if "reasoning_content" not in m], tokenizer)
        assert spans == prefix_spans([m for m in messages if "reasoning_content" not in m], tokenizer), text


# ---------------------------------------------------------------------------------------------- templates by hand

QWEN3_STYLE = (  # written for this test: Qwen3's behaviour (reasoning field, <think> block written by the template
    # on the replies after the last user turn, reasoning cut from earlier replies), in a few lines
    "{%- for m in messages %}"
    "{%- if m.role == 'assistant' %}"
    "{%- set content = m.content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- set reasoning = m.reasoning_content if m.reasoning_content is defined and m.reasoning_content else "
    "(m.content.split('</think>')[0].split('<think>')[-1].strip('\\n') if '</think>' in m.content else '') %}"
    "{%- if loop.last %}{{ '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content }}"
    "{%- else %}{{ '<|im_start|>assistant\\n' + content }}{%- endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{%- else %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.mark.parametrize("case", ["multi", "reasoning", "reasoning_content"])
def test_reasoning_the_template_writes_itself_is_trained(case: str) -> None:
    tokenizer = family_tokenizer("qwq")
    tokenizer.chat_template = QWEN3_STYLE
    (row,), _ = tokenize_rows([{"messages": CONVERSATIONS[case]}], tokenizer, 4096, "truncate")
    thought = "" if case == "multi" else THOUGHT_2
    expected = [A1 + "<|im_end|>", f"<think>\n{thought}\n</think>\n\n{A2}<|im_end|>"]
    assert [tokenizer.decode(run) for run in labelled_runs(row["input_ids"], row["labels"])] == expected


R1_STYLE = (  # written for this test: DeepSeek-R1's behaviour (every reply cut to the text after </think>, the
    # last one too; the generation prompt opens <think>), in a few lines
    "{{ bos_token }}{%- for m in messages %}"
    "{%- if m.role == 'user' %}{{ '<｜User｜>' + m.content }}"
    "{%- elif m.role == 'assistant' %}{{ '<｜Assistant｜>' + m.content.split('</think>')[-1] + eos_token }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{%- endif %}"
)


@pytest.mark.parametrize("case", ["reasoning", "reasoning_content", "multi"])
def test_reasoning_a_template_cuts_from_every_reply_is_written_back_into_the_last(case: str) -> None:
    """DeepSeek-R1's template writes only the text after </think>, the last reply too, so its reasoning would be
    trained nowhere: the last reply gets it back before its text, where the chat prompt's <think> opens it, and the
    run log says so; earlier replies stay cut (the history the model is shown). No reasoning: nothing changes."""
    from engine.data.masking import prompt_text

    bos, eos = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
    tokenizer = build_tokenizer(extra_special_tokens=(bos, eos, "<｜User｜>", "<｜Assistant｜>"), bos_token=bos,
                                eos_token=eos)
    tokenizer.chat_template = R1_STYLE
    messages = [message for message in CONVERSATIONS[case] if message["role"] != "system"]
    (row,), _ = tokenize_rows([{"messages": messages}], tokenizer, 4096, "truncate")
    trained = [tokenizer.decode(run) for run in labelled_runs(row["input_ids"], row["labels"])]
    if case == "multi":
        assert trained == [A1 + eos, A2 + eos]
        assert template_notes([{"messages": messages}], tokenizer) == []
        return
    assert trained == ["\n\n" + A1 + eos, f"<think>\n{THOUGHT_2}\n</think>\n\n{A2}{eos}"]
    full, _ = render_with_spans(messages, tokenizer)
    assert full.startswith(prompt_text(messages[:-1], tokenizer))  # chat prompts with what training saw
    assert THOUGHT_1 not in full
    assert any("cuts the reasoning out of every reply, the last one too" in note
               for note in template_notes([{"messages": messages}], tokenizer))


def test_reply_the_template_never_writes_is_a_clear_error() -> None:
    tokenizer = build_tokenizer()
    tokenizer.chat_template = (  # drops every assistant reply but the last
        "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}"
        "{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    )
    rows = [{"messages": CONVERSATIONS["multi"]}]
    with pytest.raises(DataError, match=r"^train\.jsonl row 1, turn 2: the chat template does not write this "
                                        r"assistant reply .*: remove the turn or use a template"):
        tokenize_rows(rows, tokenizer, 4096, "truncate", source="train.jsonl")


def test_template_error_names_the_row_and_turn() -> None:
    tokenizer = family_tokenizer("gemma-2")
    rows = [{"messages": [USER_1, REPLY_1]}, {"messages": [USER_1, REPLY_1, USER_2, REPLY_2, USER_1, REPLY_1]}]
    rows[1]["messages"][2] = {"role": "assistant", "content": "Again."}  # two replies in a row
    with pytest.raises(DataError, match=r"^data\.json row 2, turn 3: the chat template fails .*Conversation roles "
                                        r"must alternate.*: change the row or the template\.$"):
        tokenize_rows(rows, tokenizer, 4096, "truncate", source="data.json")


# ---------------------------------------------------------------------------------------------- train and chat


def test_lora_trains_and_chats_under_a_template_that_is_not_prefix_stable(tmp_path: Path) -> None:
    """QwQ: reasoning cut from earlier replies, a generation prompt that opens <think>; a system prompt, and
    glaive-style tool calls, too."""
    from engine.chat.session import ChatSession
    from engine.data.tokens import end_of_turn_ids
    from engine.jobs.rundir import RunDir
    from tests.cli import train_in_process, write_config

    base = build_tiny_llama(tmp_path / "qwq-tiny", tokenizer_options=FAMILIES["qwq"].tokens,
                            chat_template=(TEMPLATES / FAMILIES["qwq"].template).read_text(encoding="utf-8"))
    def sharegpt(messages: list[dict]) -> dict:  # with the reasoning_content field as sharegpt rows carry it
        roles = {"system": "system", "user": "human", "assistant": "gpt"}
        turns = [{"from": roles[m["role"]], "value": m["content"]} for m in messages]
        for turn, message in zip(turns, messages, strict=True):
            if "reasoning_content" in message:
                turn["reasoning_content"] = message["reasoning_content"]
        return {"conversations": turns}

    rows = [sharegpt(CONVERSATIONS["reasoning"]), sharegpt(CONVERSATIONS["reasoning_content"]), GLAIVE] * 2
    data = tmp_path / "thinking.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    config = write_config(tmp_path / "run.yaml", base, data, tmp_path / "run")
    result = train_in_process(str(config))  # what `launch.py train` runs, in this process: the run is the subject
    assert result.returncode == 0, result.stderr
    assert "reasoning is written into the reply as <think>...</think>" in result.stdout
    run = RunDir(tmp_path / "run")
    assert (run.adapter / "adapter_model.safetensors").is_file()

    session = ChatSession()
    session.load(adapters={"ft": str(run.path)})
    prompt = session.prompt_ids([USER_1], "Be brief.", session.tokenizer)["input_ids"][0].tolist()
    assert session.tokenizer.decode(prompt) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n"
    )
    assert session.tokenizer.convert_tokens_to_ids("<|im_end|>") in end_of_turn_ids(session.tokenizer)
    reply = "".join(session.generate([USER_1], "ft", "Be brief.", max_new_tokens=4, temperature=0.0))
    assert isinstance(reply, str)
    session.unload()


def test_run_log_says_where_the_system_prompt_and_reasoning_went() -> None:
    rows = [{"messages": CONVERSATIONS["multi+system"]}, {"messages": CONVERSATIONS["reasoning_content"]}]
    assert template_notes(rows, family_tokenizer("gemma-2")) == [
        "the chat template rejects the system role (System role not supported): the system prompt is folded into "
        "the first user turn",
        "the chat template reads no reasoning field: reasoning is written into the reply as <think>...</think> "
        "before its text",
    ]
    assert template_notes(rows[:1], family_tokenizer("mistral-nemo")) == [
        "the chat template writes the system prompt only into the last user turn, and drops it when a reply ends "
        "the conversation: it is folded into the last user turn"]
    assert template_notes(rows[:1], family_tokenizer("qwq")) == []
    assert template_notes([{"messages": CONVERSATIONS["multi"]}], family_tokenizer("gemma-2")) == []


def test_chat_folds_the_system_prompt_for_a_template_that_rejects_it() -> None:
    from engine.chat.session import ChatSession

    tokenizer = family_tokenizer("gemma-2")
    ids = ChatSession().prompt_ids([USER_1], "Be brief.", tokenizer)["input_ids"][0].tolist()
    assert tokenizer.decode(ids) == (
        "<bos><start_of_turn>user\nBe brief.\n\nWho are you?<end_of_turn>\n<start_of_turn>model\n"
    )



# ---------------------------------------------------------------------------------------------- tool calls

WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                          "required": ["city"]}}
GLAIVE = {  # LLaMA-Factory's glaive_toolcall shape: function_call / observation turns, tools as a JSON string
    "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"from": "observation", "value": json.dumps({"celsius": 21})},
        {"from": "gpt", "value": "It is 21 degrees in Paris."},
    ],
    "tools": json.dumps([WEATHER]),
}
OPENAI = {  # OpenAI messages: assistant tool_calls with arguments as a JSON string, a tool turn, a tools list
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "abcdef123", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
        {"role": "tool", "tool_call_id": "abcdef123", "content": "21"},
        {"role": "assistant", "content": "It is 21 degrees in Paris."},
    ],
    "tools": [{"type": "function", "function": WEATHER}],
}
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TOOL_BLOCK = f"<tool_call>\n{CALL}\n</tool_call>"  # Qwen2.5's and Hermes' syntax, and the fallback's
ANSWER = "It is 21 degrees in Paris."
EXPECTED_TOOL_REPLIES = {
    "llama-3.1": {  # its own syntax ("parameters"); it writes no text beside a call
        "glaive": ['{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>', ANSWER + "<|eot_id|>"],
        "openai": ['{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>', ANSWER + "<|eot_id|>"]},
    "qwen2.5": {"glaive": [TOOL_BLOCK + "<|im_end|>", ANSWER + "<|im_end|>"],
                "openai": [f"Let me check.\n{TOOL_BLOCK}<|im_end|>", ANSWER + "<|im_end|>"]},
    "qwq": {"glaive": [TOOL_BLOCK + "<|im_end|>", ANSWER + "<|im_end|>"],
            "openai": [f"Let me check.\n{TOOL_BLOCK}<|im_end|>", ANSWER + "<|im_end|>"]},
    "hermes-3-tool-use": {"glaive": [TOOL_BLOCK + "<|im_end|>", ANSWER + "<|im_end|>"],
                          "openai": [TOOL_BLOCK + "<|im_end|>", ANSWER + "<|im_end|>"]},  # no text beside calls
    "mistral-nemo": {  # ids of nine letters and digits: made up where the data has none
        "glaive": ['[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call00001"}]</s>',
                   ANSWER + "</s>"],
        "openai": ['[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcdef123"}]</s>',
                   ANSWER + "</s>"]},
    # no tool support in the template: the documented fallback
    "gemma-2": {"glaive": [TOOL_BLOCK + "<end_of_turn>", ANSWER + "<end_of_turn>"],
                "openai": [f"Let me check.\n{TOOL_BLOCK}<end_of_turn>", ANSWER + "<end_of_turn>"]},
    "phi-3.5": {"glaive": [TOOL_BLOCK + "<|end|>", ANSWER + "<|end|>"],
                "openai": [f"Let me check.\n{TOOL_BLOCK}<|end|>", ANSWER + "<|end|>"]},
    "smollm2": {"glaive": [TOOL_BLOCK + "<|im_end|>", ANSWER + "<|im_end|>"],
                "openai": [f"Let me check.\n{TOOL_BLOCK}<|im_end|>", ANSWER + "<|im_end|>"]},
}
TOOL_CASES = [(family, shape) for family in EXPECTED_TOOL_REPLIES for shape in ("glaive", "openai")]


def load_tool_rows(tmp_path: Path, shape: str) -> list[dict]:
    from engine.config import DataConfig
    from engine.data.pipeline import load_rows

    path = tmp_path / f"{shape}.json"
    path.write_text(json.dumps([GLAIVE if shape == "glaive" else OPENAI]), encoding="utf-8")
    rows, fmt = load_rows(DataConfig(path=str(path)))
    assert fmt == ("sharegpt" if shape == "glaive" else "openai")
    return rows


@pytest.mark.parametrize(("family", "shape"), TOOL_CASES, ids=[f"{f}-{s}" for f, s in TOOL_CASES])
def test_tool_calls_are_trained_and_results_and_tool_lists_are_not(
    family: str, shape: str, tokenizers: dict, tmp_path: Path
) -> None:
    tokenizer = tokenizers[family]
    (row,), _ = tokenize_rows(load_tool_rows(tmp_path, shape), tokenizer, 4096, "truncate")
    expected = EXPECTED_TOOL_REPLIES[family][shape]
    runs = labelled_runs(row["input_ids"], row["labels"])
    assert [tokenizer.decode(run) for run in runs] == expected
    assert runs == [tokenizer(text, add_special_tokens=False)["input_ids"] for text in expected]
    text = tokenizer.decode(row["input_ids"])
    assert "The weather in a city" in text  # the tool list is rendered, and masked
    assert "21" in text.split(expected[0])[1]  # so is the tool's result


@pytest.mark.parametrize("family", list(EXPECTED_TOOL_REPLIES))
def test_a_call_followed_by_more_turns_is_trained_whole(family: str, tokenizers: dict, tmp_path: Path) -> None:
    """One more exchange after the tool call's answer trains the call as the row alone does: its opening too,
    though Mistral's template then writes the tool list (and the system prompt) before the new last user turn, so
    the render before the call is no prefix of the whole."""
    tokenizer = tokenizers[family]
    (row,) = load_tool_rows(tmp_path, "openai")
    row["messages"] += [{"role": "user", "content": "And in Rome?"}, {"role": "assistant", "content": "Ask later."}]
    (tokenized,), _ = tokenize_rows([row], tokenizer, 4096, "truncate")
    trained = [tokenizer.decode(run) for run in labelled_runs(tokenized["input_ids"], tokenized["labels"])]
    assert trained[:2] == EXPECTED_TOOL_REPLIES[family]["openai"]
    assert len(trained) == 3 and "Ask later." in trained[2] and "Rome" not in trained[2]


def test_tool_calls_are_written_as_the_template_demands_them(tmp_path: Path, tokenizers: dict) -> None:
    """Call ids that are not nine letters and digits get such ids where the template demands them (Mistral's,
    each result the id of its call); arguments become a JSON string where the template adds them to text
    (DeepSeek's); other templates get them as they are."""
    (row,) = load_tool_rows(tmp_path, "openai")
    row["messages"][2]["tool_calls"][0]["id"] = row["messages"][3]["tool_call_id"] = "call_Xk2p9QzR7fLm"
    tokenizer = tokenizers["mistral-nemo"]
    (tokenized,), _ = tokenize_rows([row], tokenizer, 4096, "truncate")
    runs = labelled_runs(tokenized["input_ids"], tokenized["labels"])
    assert tokenizer.decode(runs[0]) == EXPECTED_TOOL_REPLIES["mistral-nemo"]["openai"][0].replace(
        "abcdef123", "call00001")
    assert '"call_id": "call00001"' in tokenizer.decode(tokenized["input_ids"])  # the result names its call

    tokenizer = build_tokenizer(extra_special_tokens=("<|User|>", "<|Assistant|>", "<|calls|>", "<|end|>"),
                                eos_token="<|end|>")
    tokenizer.chat_template = (  # written for this test: DeepSeek's way of writing a call, in a few lines
        "{%- for m in messages %}{%- if m.role == 'user' %}{{ '<|User|>' + m.content }}"
        "{%- elif m.role == 'assistant' and m.tool_calls %}{{ '<|Assistant|><|calls|>' }}"
        "{%- for t in m.tool_calls %}{{ t.function.name + '\\n' + t.function.arguments }}{%- endfor %}{{ '<|end|>' }}"
        "{%- elif m.role == 'assistant' %}{{ '<|Assistant|>' + m.content + '<|end|>' }}"
        "{%- elif m.role == 'tool' %}{{ '<|User|>' + m.content }}{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}{{ '<|Assistant|>' }}{%- endif %}")
    (tokenized,), _ = tokenize_rows([row], tokenizer, 4096, "truncate")
    assert [tokenizer.decode(run) for run in labelled_runs(tokenized["input_ids"], tokenized["labels"])] == [
        '<|calls|>get_weather\n{"city": "Paris"}<|end|>', ANSWER + "<|end|>"]


def test_fallback_writes_the_tools_into_the_system_prompt(tmp_path: Path, tokenizers: dict) -> None:
    tokenizer = tokenizers["smollm2"]
    rows = load_tool_rows(tmp_path, "openai")
    text, _ = render_with_spans(rows[0]["messages"], tokenizer, rows[0]["tools"])
    schema = json.dumps(WEATHER)
    assert text.startswith(
        "<|im_start|>system\nBe brief.\n\nYou can call these tools (one JSON schema a line):\n"
        f"<tools>\n{schema}\n</tools>\n"
        'To call a tool, answer with <tool_call>\n{"name": TOOL, "arguments": {...}}\n</tool_call>; '
        "its result comes back as <tool_response>\nRESULT\n</tool_response>.<|im_end|>\n"
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
    )
    assert "<|im_start|>user\n<tool_response>\n21\n</tool_response><|im_end|>\n" in text
    assert template_notes(rows, tokenizer) == [
        "the chat template cannot render tool calls: tools, calls and results are written as text (<tools>, "
        "<tool_call>, <tool_response>; see the README)"]
    assert template_notes(rows, tokenizers["qwen2.5"]) == []


@pytest.mark.parametrize(("turns", "words"), [
    ([{"from": "human", "value": "Hi"}, {"from": "observation", "value": "21"}, {"from": "gpt", "value": "Ok"}],
     r"row 1: field 'conversations' has a tool result \(turn 2\) that follows no tool call"),
    ([{"from": "human", "value": "Hi"}, {"from": "function_call", "value": "{name: 1}"}, {"from": "gpt", "value": "x"}],
     r"row 1: field 'conversations\[1\]\.value' is not valid JSON"),
    ([{"from": "human", "value": "Hi"}, {"from": "function_call", "value": '{"arguments": {}}'}],
     r"row 1: field 'conversations\[1\]\.value' has no function name"),
])
def test_bad_tool_turns_are_one_sentence(turns: list, words: str, tmp_path: Path) -> None:
    from engine.config import DataConfig
    from engine.data.pipeline import load_rows

    path = tmp_path / "tools.json"
    path.write_text(json.dumps([{"conversations": turns, "tools": "[]"}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"^tools\.json " + words):
        load_rows(DataConfig(path=str(path)))


def test_template_limit_on_tool_calls_names_the_turn(tmp_path: Path, tokenizers: dict) -> None:
    rows = load_tool_rows(tmp_path, "openai")
    calls = rows[0]["messages"][2]["tool_calls"]
    rows[0]["messages"][2]["tool_calls"] = [calls[0], {**calls[0], "id": "abcdef124"}]  # two calls at once
    with pytest.raises(DataError, match=r"^tools\.json row 1, turn 3: the chat template fails on this conversation "
                                        r"\(This model only supports single tool-calls at once!\)"):
        tokenize_rows(rows, tokenizers["llama-3.1"], 4096, "truncate", source="tools.json")


def test_export_verifies_on_rows_rendered_as_training_rendered_them(tmp_path: Path) -> None:
    from engine.config import DataConfig, ModelConfig, RunConfig
    from engine.export.verify import Verification, verification_prompts

    path = tmp_path / "system.json"
    path.write_text(json.dumps([{"messages": CONVERSATIONS["multi+system"]}]), encoding="utf-8")
    config = RunConfig(model=ModelConfig(name_or_path="unused"), data=DataConfig(path=str(path)), output_dir="unused")
    tokenizer = family_tokenizer("gemma-2")  # rejects the system role: training folds it, so must verification
    (ids,) = verification_prompts(config, tokenizer, Verification(), print)
    assert tokenizer.decode(ids[0]).startswith("<bos><start_of_turn>user\nBe brief.\n\nWho are you?<end_of_turn>")
