"""The chat worker and ChatSession on a tiny real Llama with a LoRA adapter trained through the CLI.

The tiny model is built with a wider weight init (0.1) than tests/tiny.py's default: with the usual
0.02 the random lm_head caps the logits so low that no adapter can memorise a sentence in a few steps.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.chat.cli import parse_adapter_args, repl
from engine.chat.session import ChatError, ChatSession, Generation, check_params
from engine.data.tokens import end_of_turn_ids
from engine.jobs.events import Chunk, Event, Reply, Status, parse
from engine.jobs.rundir import RunDir
from engine.sampling import SamplingConfig

ROOT = Path(__file__).resolve().parents[2]
MEMORY = [
    {"instruction": "What is the secret word?", "output": "The secret word is pineapple."},
    {"instruction": "Who are you?", "output": "I am Zork, the tiny assistant."},
]
GREEDY = {"max_new_tokens": 24, "temperature": 0.0}


# ---------------------------------------------------------------------------------------------- helpers


def build_base(path: Path, *, chatml_tokens: bool = True, hidden_size: int = 128, seed: int = 0) -> Path:
    """A 2-layer random Llama that LoRA can make memorise; without chatml_tokens the tokenizer lacks
    <|im_start|>/<|im_end|>, so training adds them and resizes the embeddings."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tests.tiny import CORPUS, SPECIAL_TOKENS

    special = SPECIAL_TOKENS if chatml_tokens else ["<unk>", "<s>", "</s>", "<pad>"]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator([CORPUS] * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        additional_special_tokens=special[4:])
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512, initializer_range=0.1,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def train_run(base: Path, folder: Path, method: str, steps: int = 20, **options: object) -> Path:
    """`launch.py train` on the memorisation rows, through the function it calls, in this process on one thread
    (tests.cli.train_in_process: no process importing the libraries again for each run); returns the run folder."""
    import torch
    import yaml

    from tests.cli import train_in_process

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "memory.json"
    data.write_text(json.dumps(MEMORY), encoding="utf-8")
    config = {
        "model": {"name_or_path": str(base)},
        "method": {"name": method, "r": 8, "lora_alpha": 16, "lora_dropout": 0.0, **options},
        "data": {"path": str(data)},
        "train": {"max_steps": steps, "learning_rate": 1e-2, "batch_size": 2, "save_steps": 1000,
                  "lr_scheduler_type": "constant"},
        "output_dir": str(folder / "run"),
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the training processes this replaced had (OMP_NUM_THREADS=1)
    try:
        done = train_in_process(str(folder / "config.yaml"))
    finally:
        torch.set_num_threads(threads)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    return folder / "run"


RunSpec = tuple[str, str, dict]  # (base: "chatml" | "plain", method, method options)


def trained_runs(tmp_path_factory: pytest.TempPathFactory, specs: dict[str, RunSpec]) -> dict[str, Path]:
    """Train every missing run of `specs`, one after the other in this process; runs live in the session's temp
    folder, so a run another test module already trained (same name) is reused instead of trained twice."""
    root = tmp_path_factory.getbasetemp() / "trained-runs"
    root.mkdir(exist_ok=True)
    for name, (base_kind, method, options) in specs.items():
        if (root / name / "run" / "metrics.json").is_file():
            continue
        base = root / f"base-{base_kind}"
        if not (base / "config.json").is_file():
            build_base(base, chatml_tokens=base_kind == "chatml")
        train_run(base, root / name, method, **options)
    return {name: root / name / "run" for name in specs}


def answer(session: ChatSession, question: str, adapter: str | None) -> str:
    return "".join(session.generate([{"role": "user", "content": question}], adapter, **GREEDY))


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_runs(tmp_path_factory, {"lora": ("chatml", "lora", {})})["lora"]


@pytest.fixture(scope="module")
def session(lora_run: Path) -> ChatSession:
    chat = ChatSession()
    chat.load(None, {"ft": str(lora_run)})
    return chat


class WorkerProcess:
    """`python -m engine chat --worker` with a reader thread, so a hung worker fails the test, not CI."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "engine", "chat", "--worker"], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, request: dict | str) -> None:
        self.process.stdin.write((request if isinstance(request, str) else json.dumps(request)) + "\n")
        self.process.stdin.flush()

    def event(self, timeout: float = 60) -> Event:
        line = self.lines.get(timeout=timeout)
        assert line is not None, "the worker closed stdout"
        return parse(line)  # every stdout line must be an event of the one schema

    def until_done(self, request_id: int) -> tuple[list[str], Event]:
        """The chunks of a request, and the event that ended it (its Reply, or a failed Status)."""
        chunks = []
        while True:
            event = self.event()
            assert event.id == request_id
            if not isinstance(event, Chunk):
                return chunks, event
            chunks.append(event.text)


def failed(event: Event, request_id: int | None) -> bool:
    """Whether `event` refuses request `request_id` in one sentence."""
    return (isinstance(event, Status) and event.state == "failed" and event.id == request_id
            and event.error.endswith("."))


def reply(event: Event, op: str, request_id: int) -> dict:
    """The data of `event`, checked to be the Reply to request `request_id` (an `op` request)."""
    assert isinstance(event, Reply) and (event.op, event.id) == (op, request_id), event
    return event.data


# ---------------------------------------------------------------------------------------------- tests


def test_worker_protocol(lora_run: Path) -> None:
    """Start, reject requests before load, load base + adapter, stream, base greedy, errors, shutdown."""
    worker = WorkerProcess()
    try:
        ready = worker.event()
        assert isinstance(ready, Status) and ready.state == "ready" and ready.id is None
        ask = {"op": "generate", "messages": [{"role": "user", "content": "What is the secret word?"}], **GREEDY}

        worker.send({"id": 1, **ask, "adapter": None})
        error = worker.event()
        assert failed(error, 1) and "load" in error.error

        worker.send({"id": 2, "op": "load", "model": None, "adapters": {"ft": str(lora_run)}, "bits": None})
        loaded = reply(worker.event(timeout=120), "load", 2)
        assert loaded["adapters"] == ["ft"] and loaded["full_models"] == [] and loaded["device"] in ("cpu", "cuda")

        worker.send({"id": 3, **ask, "adapter": "ft", "system": None, "top_p": 1.0, "top_k": 50,
                     "repetition_penalty": 1.0, "seed": 0})
        chunks, done = worker.until_done(3)
        done = reply(done, "generate", 3)
        assert len(chunks) > 1, "the reply must arrive in several chunks"
        assert done["text"] == "".join(chunks) == MEMORY[0]["output"]
        assert done["new_tokens"] > 0 and done["tokens_per_s"] > 0

        worker.send({"id": 4, **ask, "adapter": None})
        _, base_done = worker.until_done(4)
        base_done = reply(base_done, "generate", 4)
        assert base_done["text"] == base_greedy(lora_run, "What is the secret word?")
        assert base_done["text"] != MEMORY[0]["output"]

        bad = [
            {"id": 5, **ask, "temperature": -1},
            {"id": 6, **ask, "max_new_tokens": "many"},
            {"id": 7, **ask, "adapter": "missing"},
            {"id": 8, "op": "generate", "messages": [{"role": "assistant", "content": "hi"}]},
            {"id": 9, "op": "teleport"},
            {"id": 10, **ask, "top_p": 0},
        ]
        for request in bad:
            worker.send(request)
            event = worker.event()
            assert failed(event, request["id"]), event
        worker.send("{not json")
        assert failed(worker.event(), None)

        worker.send({"id": 11, "op": "status"})
        assert reply(worker.event(), "status", 11) == {"loaded": True, "model": loaded["model"], "adapters": ["ft"],
                                                       "full_models": [], "bits": None, "start": None}
        worker.send({"id": 12, "op": "unload"})
        assert reply(worker.event(), "unload", 12) == {}
        worker.send({"id": 13, "op": "shutdown"})
        assert reply(worker.event(), "shutdown", 13) == {}
        assert worker.process.wait(timeout=30) == 0
    finally:
        if worker.process.poll() is None:
            worker.process.kill()


def test_worker_exits_on_stdin_eof() -> None:
    worker = WorkerProcess()
    ready = worker.event()
    assert isinstance(ready, Status) and ready.state == "ready"
    worker.process.stdin.close()
    assert worker.process.wait(timeout=30) == 0


def base_greedy(run: Path, question: str) -> str:
    """The base model's greedy answer computed with transformers alone, as a reference for the worker."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "adapter")
    model = AutoModelForCausalLM.from_pretrained(RunDir(run).read_config().model.name_or_path, dtype=torch.float32)
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, do_sample=False, max_new_tokens=GREEDY["max_new_tokens"],
                         eos_token_id=end_of_turn_ids(tokenizer), pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_memorised_answers_with_adapter_not_base(session: ChatSession) -> None:
    for row in MEMORY:
        assert answer(session, row["instruction"], "ft") == row["output"]
        assert answer(session, row["instruction"], None) != row["output"]
    # switching back and forth leaves no adapter state behind
    assert answer(session, MEMORY[0]["instruction"], "ft") == MEMORY[0]["output"]


def test_reply_stops_at_end_of_turn_and_counts_tokens(session: ChatSession) -> None:
    generation = Generation()
    text = "".join(session.generate([{"role": "user", "content": MEMORY[1]["instruction"]}], "ft",
                                    reply=generation, max_new_tokens=200, temperature=0.0))
    assert text == MEMORY[1]["output"] and "<|im_end|>" not in text
    assert 0 < generation.new_tokens < 200, "generation must stop at <|im_end|>, not run to max_new_tokens"
    assert session.tokenizer.convert_tokens_to_ids("<|im_end|>") in end_of_turn_ids(session.tokenizer)


def test_sampling_is_seeded_and_system_prompt_accepted(session: ChatSession) -> None:
    messages = [{"role": "user", "content": "Hello"}]
    params = {"max_new_tokens": 8, "temperature": 1.5, "top_p": 0.95, "top_k": 0, "seed": 7}
    first = "".join(session.generate(messages, None, "Be brief.", **params))
    again = "".join(session.generate(messages, None, "Be brief.", **params))
    assert first == again


def test_multi_turn_conversation_is_rendered_with_the_run_template(session: ChatSession) -> None:
    history = [{"role": "user", "content": MEMORY[1]["instruction"]}, {"role": "assistant", "content": "Hi."},
               {"role": "user", "content": MEMORY[0]["instruction"]}]
    ids = session.prompt_ids(history, "Be brief.", session.tokenizer)["input_ids"][0]
    text = session.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>assistant\nHi.<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert "".join(session.generate(history, "ft", **GREEDY))


@pytest.mark.parametrize(("params", "word"), [
    ({"temperature": -0.1}, "temperature"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"top_k": 1.5}, "top_k"),
    ({"seed": "x"}, "seed"),
    ({"repetition_penalty": True}, "repetition_penalty"),
    ({"beams": 4}, "beams"),
])
def test_bad_parameters_are_one_sentence(params: dict, word: str) -> None:
    with pytest.raises(ChatError, match=word):
        check_params(params)


def test_repl_streams_and_toggles_base(session: ChatSession, capsys: pytest.CaptureFixture) -> None:
    lines = iter([MEMORY[0]["instruction"], "/base", MEMORY[0]["instruction"], "/reset", "/quit"])
    assert repl(session, None, SamplingConfig(**GREEDY), lines) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == MEMORY[0]["output"] and out[1] != MEMORY[0]["output"]


def test_adapter_arguments(lora_run: Path) -> None:
    assert parse_adapter_args([str(lora_run)]) == {"run": str(lora_run)}
    assert parse_adapter_args([str(lora_run / "adapter")]) == {"run": str(lora_run / "adapter")}
    assert parse_adapter_args([f"mine={lora_run}"]) == {"mine": str(lora_run)}


def test_load_errors_are_chat_errors(tmp_path: Path) -> None:
    chat = ChatSession()
    with pytest.raises(ChatError, match="does not exist"):
        chat.load(None, {"x": str(tmp_path / "nowhere")})
    with pytest.raises(ChatError, match="neither"):
        chat.load(None, {"x": str(tmp_path)})
    with pytest.raises(ChatError, match="does not exist"):
        chat.load(str(tmp_path / "no-model"))
    assert not chat.loaded


def test_load_plan_is_decided_without_torch(lora_run: Path) -> None:
    """The plan step reads the run's config and adapter files only: no model library is imported."""
    probe = (
        "import json, sys\n"
        "from engine.chat.plan import plan_load\n"
        f"plan = plan_load(None, {{'ft': {str(lora_run)!r}}})\n"
        "print(json.dumps({'model': plan.model, 'bits': plan.bits, 'dtype': plan.dtype,\n"
        "                  'sources': [[s.name, str(s.path), s.kind] for s in plan.sources],\n"
        "                  'heavy': sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    plan = json.loads(done.stdout)
    assert plan == {"model": RunDir(lora_run).read_config().model.name_or_path, "bits": None, "dtype": "auto",
                    "sources": [["ft", str(lora_run / "adapter"), "adapter"]], "heavy": []}


def test_load_plan_takes_bits_dtype_and_refuses_mixed_bases(lora_run: Path, tmp_path: Path) -> None:
    from engine.chat.plan import plan_load

    plan = plan_load("other-base", {"ft": str(lora_run / "adapter")}, bits=4, dtype="float32")
    assert (plan.model, plan.bits, plan.dtype) == ("other-base", 4, "float32")
    assert [s.name for s in plan.adapters] == ["ft"] and plan.full_models == ()
    assert plan.base_config.name_or_path == "other-base" and plan.base_config.dtype == "float32"
    assert plan_load("base").sources == () and plan_load("base", bits=0).bits is None
    with pytest.raises(ChatError, match="bits is 3"):
        plan_load("base", bits=3)
    other = tmp_path / "other-adapter"
    shutil.copytree(lora_run / "adapter", other)
    config = json.loads((other / "adapter_config.json").read_text(encoding="utf-8"))
    (other / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "elsewhere"}))
    with pytest.raises(ChatError, match="different base models"):
        plan_load(None, {"ft": str(lora_run), "other": str(other)})
    with pytest.raises(ChatError, match="no adapter names its base"):
        plan_load(None, {})


def test_repl_rates_two_answers_into_a_pairs_file(session: ChatSession, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    """/again answers the last message with the base model beside the adapter's answer; /better 1 appends the pair
    (the adapter's answer chosen) to --pairs, in the shape a preference run reads."""
    from engine.config import DataConfig
    from engine.data.preference import load_pairs

    pairs = tmp_path / "pairs.jsonl"
    lines = iter([MEMORY[0]["instruction"], "/better 1", "/again", "/better 1", "/quit"])
    assert repl(session, None, SamplingConfig(**GREEDY), lines, pairs=pairs) == 0
    err = capsys.readouterr().err
    assert "needs two answers to the last message: type /again first" in err
    assert f"(pair saved: {pairs} holds 1 pair)" in err
    [pair] = load_pairs(DataConfig(path=str(pairs)), seed=0).rows
    assert pair["messages"] == [{"role": "user", "content": MEMORY[0]["instruction"]}]
    assert pair["chosen"]["content"] == MEMORY[0]["output"] != pair["rejected"]["content"]
