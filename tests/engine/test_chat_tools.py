"""Tools in chat: a glaive-style tool-call file trains, and chat offered the same tools answers with the memorised
tool call, read back as a call; the tool's result, sent back, gets the memorised answer. Also: the chat prompt is
the training render, a reply is read for calls in every template's own syntax, the worker's and the terminal's
tool requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.chat.session import ChatError, ChatSession, Generation, check_messages
from engine.sampling import SamplingConfig
from tests.cli import launch, train_in_process, write_config, write_rows
from tests.engine.test_templates import EXPECTED_TOOL_REPLIES, FAMILIES, TEMPLATES, family_tokenizer, load_tool_rows
from tests.tiny import CORPUS, build_tiny_llama

WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CONVERT = {"name": "convert_currency", "description": "Convert an amount of money",
           "parameters": {"type": "object", "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
                          "required": ["amount", "to"]}}
TOOLS = [WEATHER, CONVERT]


def glaive_row(question: str, call: dict | None, result: str | None, answer: str) -> dict:
    """One row in the shape of LLaMA-Factory's glaive_toolcall_en_demo.json: human / function_call / observation /
    gpt turns, and the tools as a JSON string."""
    turns = [{"from": "human", "value": question}]
    if call is not None:
        turns += [{"from": "function_call", "value": json.dumps(call)}, {"from": "observation", "value": result}]
    return {"conversations": turns + [{"from": "gpt", "value": answer}], "tools": json.dumps(TOOLS)}


PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}}
EUROS = {"name": "convert_currency", "arguments": {"amount": 100, "to": "EUR"}}
ROWS = [
    glaive_row("What is the weather in Paris?", PARIS, '{"celsius": 21}', "It is 21 degrees in Paris."),
    glaive_row("Change 100 dollars to euros.", EUROS, '{"amount": 92}', "That is 92 euros."),
    glaive_row("Who are you?", None, None, "I am a helpful assistant."),
]


def as_call(call: dict) -> dict:
    return {"type": "function", "function": call}


# ---------------------------------------------------------------------------------------------- render and read

TOOL_CASES = [(family, shape) for family in EXPECTED_TOOL_REPLIES for shape in ("glaive", "openai")]


def expected_prompt(family: str, before_reply: str, after_result: bool) -> str:
    """What the template writes to prompt a reply, from reading it: the training render up to the reply, but for
    QwQ, whose generation prompt opens <think> (a reply in training has none), and Hermes-3, which ends a tool
    result that is the last message without the newline it writes when a reply follows."""
    if family == "qwq":
        return before_reply + "<think>\n"
    if family == "hermes-3-tool-use" and after_result:
        return before_reply.removesuffix("</tool_response>\n<|im_end|><|im_start|>assistant\n") + (
            "</tool_response><|im_end|><|im_start|>assistant\n")
    return before_reply


@pytest.mark.parametrize(("family", "shape"), TOOL_CASES, ids=[f"{f}-{s}" for f, s in TOOL_CASES])
def test_chat_prompt_is_the_training_render(family: str, shape: str, tmp_path: Path) -> None:
    """Before each reply of a tool-call row (the call, then the answer to its result), the chat prompt is the text
    training rendered before that reply: the tools, the call and the result as the template (or the fallback)
    writes them; the system prompt where it places it."""
    from engine.data.masking import render_with_spans

    tokenizer = family_tokenizer(family)
    (row,) = load_tool_rows(tmp_path, shape)
    messages, tools = row["messages"], row["tools"]
    full, spans = render_with_spans(messages, tokenizer, tools)
    replies = [index for index, message in enumerate(messages) if message["role"] == "assistant"]
    for (start, _), index in zip(spans, replies, strict=True):
        ids = ChatSession().prompt_ids(messages[:index], None, tokenizer, tools)["input_ids"][0].tolist()
        after_result = messages[index - 1]["role"] == "tool"
        assert tokenizer.decode(ids) == expected_prompt(family, full[:start], after_result)


@pytest.mark.parametrize(("family", "shape"), TOOL_CASES, ids=[f"{f}-{s}" for f, s in TOOL_CASES])
def test_a_reply_is_read_for_calls_in_the_templates_own_syntax(family: str, shape: str) -> None:
    """What training taught each template to write for the call (its trained span, end-of-turn marker dropped)
    reads back as that call, with the text beside it."""
    from engine.data.toolcalls import calls_in_reply

    reply = EXPECTED_TOOL_REPLIES[family][shape][0].removesuffix(FAMILIES[family].eot)
    content, calls = calls_in_reply(reply)
    call = as_call({"name": "get_weather", "arguments": {"city": "Paris"}})
    if family == "mistral-nemo":  # Mistral writes the call's id
        call["id"] = "call00001" if shape == "glaive" else "abcdef123"
    assert calls == [call]
    assert content == ("Let me check." if shape == "openai" and "Let me check." in reply else "")


def test_a_reply_that_only_looks_like_a_call_is_text() -> None:
    from engine.data.toolcalls import calls_in_reply

    for text in ('<tool_call>\n{"name": "get_weather", "arguments": {"city": \n</tool_call>',
                 '{"name": "Paris", "population": 2}', "[TOOL_CALLS] none", "Plain text."):
        assert calls_in_reply(text) == (text, [])


def test_tool_turns_in_a_request_are_checked_and_linked() -> None:
    messages = check_messages([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
        {"role": "tool", "content": "21"},
    ])
    assert messages[1]["tool_calls"] == [{"id": "call00001", **as_call(PARIS)}]
    assert messages[2] == {"role": "tool", "content": "21", "tool_call_id": "call00001", "name": "get_weather"}
    with pytest.raises(ChatError, match=r"^Message 2's tool_calls\[0\] has no function name: write the name of the "
                                        r"tool called\.$"):
        check_messages([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "", "tool_calls": [{}]},
                        {"role": "tool", "content": "21"}])
    with pytest.raises(ChatError, match=r"^The last message must be the user's or a tool result"):
        check_messages(messages[:2])


# ---------------------------------------------------------------------------------------------- train and chat


def train_tool_run(folder: Path, run: Path, *, in_process: bool = False) -> Path:
    """LoRA trained through `launch.py train` on the glaive-style rows into `run` (or, in_process, through the function
    it calls, in this process: tests.cli.train_in_process), over a tiny Llama with Hermes-3's tool-use template (its
    tokenizer learned from the template's text and the rows, so a row fits the model's positions); the model, the data
    file and the config go into `folder`. Rank 16 and 48 cosine steps: in 20 runs (seeds 0-19, measured before runs
    were seeded, so each also drew its own adapter initialisation) every run memorised all three rows, its first
    answer token ahead by at least 2.2 nats; rank 8 and 24 constant steps failed 3 runs in 8 (a stop's CI failed on
    such a draw)."""
    template = (TEMPLATES / FAMILIES["hermes-3-tool-use"].template).read_text(encoding="utf-8")
    corpus = CORPUS + template + json.dumps(ROWS)
    base = build_tiny_llama(folder / "hermes-tiny", hidden_size=128, initializer_range=0.1, chat_template=template,
                            tokenizer_options={**FAMILIES["hermes-3-tool-use"].tokens, "corpus": corpus,
                                               "vocab_size": 1200})
    data = write_rows(folder / "glaive_toolcall_demo.json", ROWS * 4)
    config = write_config(folder / "tool-run.yaml", base, data, run,
                          method={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0},
                          train={"max_steps": 48, "learning_rate": 1e-2, "batch_size": 4, "cutoff_len": 1024,
                                 "lr_scheduler_type": "cosine", "warmup_ratio": 0.1})
    result = train_in_process(str(config)) if in_process else launch("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    return run


TOOL_RUN = "tools"  # its name in the shared workspace, where tests/engine/test_serve.py serves it


def shared_tool_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tool-call run, trained once per test session as WORKSPACE/runs/tools of a workspace of its own (the
    model, data and config beside it in WORKSPACE/sources), so that every module that needs it reuses it."""
    workspace = tmp_path_factory.getbasetemp() / "tool-workspace"
    run = workspace / "runs" / TOOL_RUN
    if not (run / "metrics.json").is_file():
        (workspace / "sources").mkdir(parents=True, exist_ok=True)
        # in this process: the run is what these modules need, not its process. Only where no page watches the
        # workspace: the run records this (living) process as its own, which a page's scheduler takes for a run
        # whose process is still exiting (webui.jobs.scheduler.Scheduler.holders): test_browser_tools, whose server
        # watches its run's workspace, trains it through the command
        train_tool_run(workspace / "sources", run, in_process=True)
    return run


@pytest.fixture(scope="module")
def tool_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tool_run(tmp_path_factory)


@pytest.fixture(scope="module")
def tool_session(tool_run: Path) -> Iterator[ChatSession]:
    session = ChatSession()
    session.load(adapters={"ft": str(tool_run)})
    yield session
    session.unload()


GREEDY = {"max_new_tokens": 40, "temperature": 0.0}


def test_glaive_tool_file_trains_and_chat_answers_with_the_tool_call(tool_session: ChatSession) -> None:
    """Greedy, with the same tools: the memorised call, read as a call; its result sent back as a tool turn gets the
    memorised answer (the history with the call and the result re-rendered); a question without a call, text."""
    history: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = Generation()
    "".join(tool_session.generate(history, "ft", None, reply, TOOLS, **GREEDY))
    assert (reply.tool_calls, reply.content) == ([as_call(PARIS)], ""), reply.text

    history += [{"role": "assistant", "content": "", "tool_calls": reply.tool_calls},
                {"role": "tool", "content": '{"celsius": 21}'}]
    answer = Generation()
    "".join(tool_session.generate(history, "ft", None, answer, json.dumps(TOOLS), **GREEDY))
    assert (answer.text, answer.tool_calls) == ("It is 21 degrees in Paris.", [])

    plain = Generation()
    "".join(tool_session.generate([{"role": "user", "content": "Who are you?"}], "ft", None, plain, TOOLS, **GREEDY))
    assert (plain.text, plain.tool_calls) == ("I am a helpful assistant.", [])


def test_worker_offers_tools_and_answers_with_the_call(tool_run: Path) -> None:
    from tests.engine.test_chat import WorkerProcess, failed, reply

    worker = WorkerProcess()
    try:
        worker.event()  # ready
        worker.send({"id": 1, "op": "load", "model": None, "adapters": {"ft": str(tool_run)}, "bits": None})
        reply(worker.event(timeout=120), "load", 1)
        ask = {"op": "generate", "messages": [{"role": "user", "content": "Change 100 dollars to euros."}],
               "adapter": "ft", **GREEDY}
        worker.send({"id": 2, **ask, "tools": TOOLS})
        _, done = worker.until_done(2)
        data = reply(done, "generate", 2)
        assert (data["tool_calls"], data["content"]) == ([as_call(EUROS)], ""), data["text"]
        worker.send({"id": 3, **ask, "tools": [{"parameters": {}}]})
        _, refused = worker.until_done(3)
        assert failed(refused, 3) and refused.error == (
            "The tools offered cannot be used: tools[0] has no 'name': give every tool a name.")
        worker.send({"id": 4, "op": "shutdown"})
        assert reply(worker.event(), "shutdown", 4) == {}
    finally:
        if worker.process.poll() is None:
            worker.process.kill()


def test_terminal_chat_shows_the_call_and_sends_the_result(tool_session: ChatSession,
                                                           capsys: pytest.CaptureFixture) -> None:
    from engine.chat.cli import repl

    lines = iter(["What is the weather in Paris?", '/tool {"celsius": 21}', "/quit"])
    assert repl(tool_session, None, SamplingConfig(**GREEDY), lines, tools=TOOLS) == 0
    out, err = capsys.readouterr()
    assert 'tool call: get_weather({"city": "Paris"})' in err and "answer with /tool RESULT" in err
    assert out.splitlines()[-1] == "It is 21 degrees in Paris."


def test_terminal_chat_refuses_a_tools_file_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "tools.json"
    bad.write_text('[{"name": "get_weather"', encoding="utf-8")
    result = launch("chat", "--model", str(tmp_path), "--tools", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --tools {bad}: tools is not valid JSON (Expecting ',' delimiter at column 24): fix the JSON.")


def test_an_evaluation_scores_the_memorised_calls_and_a_wrong_reference(tool_run: Path, tmp_path: Path) -> None:
    """The eval job on the same run (engine/eval): the memorised calls score 1.0 on name and arguments, a reference
    naming another tool scores 0, and the question without a call is answered without one."""
    import yaml

    from engine.config_eval import load_eval_config
    from engine.jobs.rundir import EvalDir
    from tests.engine.test_eval import run_eval

    def asked(question: str, call: dict) -> dict:  # the conversation up to the call: the call is the reference
        return {"conversations": [{"from": "human", "value": question},
                                  {"from": "function_call", "value": json.dumps(call)}], "tools": json.dumps(TOOLS)}

    rows = [asked("What is the weather in Paris?", PARIS), asked("Change 100 dollars to euros.", EUROS),
            asked("What is the weather in Paris?", {"name": "get_time", "arguments": {"city": "Paris"}}), ROWS[2]]
    write_rows(tmp_path / "test.json", rows)
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({
        "models": [str(tool_run)], "data": {"path": "test.json"}, "sampling": {"max_new_tokens": 40},
        "general": False, "cutoff_len": 1024, "output_dir": "job"}), encoding="utf-8")
    job = EvalDir(tmp_path / "job")
    job.path.mkdir()
    job.config.write_text(load_eval_config(tmp_path / "eval.yaml").to_yaml(), encoding="utf-8")
    assert run_eval(job.path) == 0, job.log.read_text(encoding="utf-8")[-3000:]
    calls = job.read_metrics()["models"][tool_run.name]["tool_calls"]
    assert (calls["call_rows"], calls["attempts"], calls["invalid_json"]) == (3, 3, 0)
    assert calls["per_tool"]["get_weather"] == calls["per_tool"]["convert_currency"] == {
        "rows": 1, "name_accuracy": 1.0, "arguments_exact": 1.0, "argument_keys": 1.0}
    assert calls["per_tool"]["get_time"] == {"rows": 1, "name_accuracy": 0.0, "arguments_exact": 0.0,
                                             "argument_keys": 0.0}
    assert calls["call_recall"] == calls["call_precision"] == calls["no_call_recall"] == 1.0
    lines = [json.loads(line) for line in job.predictions.read_text(encoding="utf-8").splitlines()]
    answers = {key: [line[key][tool_run.name] for line in lines] for key in ("calls", "answers")}
    assert answers["calls"][0] == [as_call(PARIS)] and answers["answers"][3] == "I am a helpful assistant."
