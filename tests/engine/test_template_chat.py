"""Issue 13, "what must be shown": under each of the eight real chat templates (tests/chat_templates/), a LoRA run on
a tiny Llama carrying that template memorises a few short rows with a system prompt, and chat then
- renders the template's own prompt for the conversation (the saved tokenizer's apply_chat_template with the
  generation prompt; Gemma-2's system prompt folded into the user turn, as the engine documents),
- answers greedily with the memorised reply,
- and stops at the template's end-of-turn token: the last generated token is that marker, well before
  max_new_tokens, and the marker is not in the text.

Every run trains in-process through engine.train.recipe.run_train (what `launch.py train` runs after reading its
arguments) except Gemma-2's, which trains through `launch.py train` itself and is then asked through the chat worker
process as well (the page's path). About 30 s for all eight on two cores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.chat.session import ChatSession, Generation
from tests.cli import engine_process_state_kept, launch, write_config, write_rows
from tests.engine.test_templates import FAMILIES, TEMPLATES
from tests.tiny import CORPUS, build_tiny_llama

SYSTEM = "Be brief."
QUESTIONS = ("Who are you?", "What is the capital of France?")
ANSWERS = ("I am Tiny, a helpful assistant.", "Paris is the capital of France.")
THOUGHTS = ("The user asks who I am.", "France: Paris.")  # QwQ's rows carry reasoning: its prompt opens <think>
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                   "required": ["city"]}}}
TOOLS = {"hermes-3-tool-use": [WEATHER]}  # a tool-use template: its rows, and chat, offer tools
LAUNCHED = "gemma-2"  # trained through `launch.py train`; its stdout says where the system prompt went
# What each template's generation prompt ends with, read off the template (the rest is compared to the template's
# own render).
PROMPT_END = {
    "llama-3.1": "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "qwen2.5": "<|im_end|>\n<|im_start|>assistant\n",
    "qwq": "<|im_end|>\n<|im_start|>assistant\n<think>\n",
    "gemma-2": "<end_of_turn>\n<start_of_turn>model\n",
    "mistral-nemo": "[/INST]",
    "phi-3.5": "<|end|>\n<|assistant|>\n",
    "hermes-3-tool-use": "<|im_end|>\n<|im_start|>assistant\n",
    "smollm2": "<|im_end|>\n<|im_start|>assistant\n",
}
MAX_NEW_TOKENS = 48
STEPS = 24


def rows(family: str) -> list[dict[str, Any]]:
    """A single-turn row for each question, all with the system prompt (the engine folds it where the template
    rejects the system role), QwQ's with reasoning, Hermes-3's with the tools."""
    out = []
    for question, answer, thought in zip(QUESTIONS, ANSWERS, THOUGHTS, strict=True):
        reply: dict[str, Any] = {"role": "assistant", "content": answer}
        if family == "qwq":
            reply["reasoning_content"] = thought
        row: dict[str, Any] = {"messages": [{"role": "system", "content": SYSTEM},
                                            {"role": "user", "content": question}, reply]}
        if family in TOOLS:
            row["tools"] = TOOLS[family]
        out.append(row)
    return out


def continuation(family: str, index: int) -> str:
    """What the model should write after the generation prompt, up to the end-of-turn marker."""
    if family == "qwq":  # the prompt ends "<think>\n": the reasoning, then the answer, as training rendered them
        return f"{THOUGHTS[index]}\n</think>\n\n{ANSWERS[index]}"
    return ANSWERS[index]


def train(family: str, folder: Path) -> tuple[Path, str]:
    """Build a tiny Llama carrying the family's template (a tokenizer learned from the template's text and the rows,
    so a row is short, wide and large enough weights to memorise), write the rows and a LoRA config, train; returns
    the run folder and what the run printed."""
    from engine.config import load_config
    from engine.train.recipe import run_train

    template = (TEMPLATES / FAMILIES[family].template).read_text(encoding="utf-8")
    data_rows = rows(family)
    corpus = CORPUS + template + json.dumps(data_rows)
    base = build_tiny_llama(folder / "base", hidden_size=128, initializer_range=0.1, chat_template=template,
                            tokenizer_options={**FAMILIES[family].tokens, "corpus": corpus, "vocab_size": 600})
    data = write_rows(folder / "rows.json", data_rows)
    config = write_config(folder / "run.yaml", base, data, folder / "run",
                          method={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0},
                          train={"max_steps": STEPS, "learning_rate": 1e-2, "batch_size": 2, "cutoff_len": 1024,
                                 "lr_scheduler_type": "constant"})
    if family == LAUNCHED:
        result = launch("train", str(config))
        assert result.returncode == 0, result.stderr[-2000:]
        return folder / "run", result.stdout
    with engine_process_state_kept():
        assert run_train(load_config(config)) == 0, (folder / "run" / "train.log").read_text(encoding="utf-8")[-3000:]
    return folder / "run", ""


def reference_prompt(family: str, tokenizer: Any, question: str) -> str:
    """The template's own render of the chat's conversation with the generation prompt: the saved tokenizer's
    apply_chat_template, with the one deviation the engine documents for these templates (Gemma-2 rejects the
    system role: its text opens the user turn, as in training). Mistral-Nemo places the system prompt in the last
    user turn itself when prompting."""
    conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    if family == "gemma-2":
        conversation = [{"role": "user", "content": f"{SYSTEM}\n\n{question}"}]
    return tokenizer.apply_chat_template(conversation, tools=TOOLS.get(family), tokenize=False,
                                         add_generation_prompt=True)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lora_memorises_and_chat_answers_in_the_template_and_stops_at_its_end_of_turn(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    from engine.data.tokens import end_of_turn_ids

    run, printed = train(family, tmp_path)
    if family == LAUNCHED:
        assert "the system prompt is folded into the first user turn" in printed
    saved = AutoTokenizer.from_pretrained(run / "adapter")
    eot = saved.convert_tokens_to_ids(FAMILIES[family].eot)
    assert eot in end_of_turn_ids(saved)

    session = ChatSession()
    session.load(adapters={"ft": str(run)})
    outputs: list[Any] = []
    generate = session.model.generate

    def recording(**kwargs: Any) -> Any:  # the generated ids, to see which token ended the reply
        outputs.append(generate(**kwargs))
        return outputs[-1]

    monkeypatch.setattr(session.model, "generate", recording)
    replies: list[Generation] = []
    try:
        for index, question in enumerate(QUESTIONS):
            messages = [{"role": "user", "content": question}]
            tokenizer = session.tokenizers["ft"]
            prompt = session.prompt_ids(messages, SYSTEM, tokenizer, TOOLS.get(family))["input_ids"][0].tolist()
            expected_prompt = reference_prompt(family, saved, question)
            assert tokenizer.decode(prompt) == expected_prompt
            assert prompt == saved(expected_prompt, add_special_tokens=False)["input_ids"]
            assert expected_prompt.endswith(PROMPT_END[family]) and SYSTEM in expected_prompt

            reply = Generation()
            "".join(session.generate(messages, "ft", SYSTEM, reply, TOOLS.get(family), max_new_tokens=MAX_NEW_TOKENS,
                                     temperature=0.0))
            text = continuation(family, index)
            assert reply.text == saved.decode(saved(text, add_special_tokens=False)["input_ids"],
                                              skip_special_tokens=True), (family, question)
            assert reply.text.endswith(ANSWERS[index]) and reply.tool_calls == []
            new_ids = outputs[-1][0, len(prompt):].tolist()
            assert new_ids[-1] == eot, saved.decode(new_ids)  # stopped at the template's end of turn ...
            assert len(new_ids) == reply.new_tokens < MAX_NEW_TOKENS  # ... not at the length limit
            assert FAMILIES[family].eot not in reply.text
            replies.append(reply)
    finally:
        session.unload()
    if family == LAUNCHED:
        ask_the_worker(run, replies[0])


def ask_the_worker(run: Path, expected: Generation) -> None:
    """The chat worker process (`python -m engine chat --worker`) gives the same reply, of the same length: the
    answer and the end-of-turn token."""
    from tests.engine.test_chat import WorkerProcess, reply

    worker = WorkerProcess()
    try:
        worker.event()  # ready
        worker.send({"id": 1, "op": "load", "model": None, "adapters": {"ft": str(run)}, "bits": None})
        reply(worker.event(timeout=120), "load", 1)
        worker.send({"id": 2, "op": "generate", "messages": [{"role": "user", "content": QUESTIONS[0]}],
                     "adapter": "ft", "system": SYSTEM, "max_new_tokens": MAX_NEW_TOKENS, "temperature": 0.0})
        chunks, done = worker.until_done(2)
        data = reply(done, "generate", 2)
        assert ("".join(chunks), data["text"], data["new_tokens"]) == (expected.text, expected.text,
                                                                       expected.new_tokens)
        worker.send({"id": 3, "op": "shutdown"})
        assert reply(worker.event(), "shutdown", 3) == {}
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(timeout=30)
        worker.process.stdin.close()
        while worker.lines.get(timeout=30) is not None:  # the reader thread has seen the end of stdout
            pass
        worker.process.stdout.close()
