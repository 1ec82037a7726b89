"""PEFT Workbench benchmark: the engine against a hand-written Trainer + peft script, `train.packing` auto
against on and off, every method, model FLOPs utilisation, and QLoRA's memory. One command, one report,
written to tests/bench/RESULTS.md.

    .venv/bin/python tests/bench/run_bench.py             # --quick (default): several minutes on 2 cores
    .venv/bin/python tests/bench/run_bench.py --full      # every row, 2 repeats, methods on 30M too
    .venv/bin/python tests/bench/run_bench.py --sizes 2m --repeats 1 --rows 24 --methods lora,prompt
    .venv/bin/python tests/bench/run_bench.py --profiles conversations --methods ''   # the earlier data
    .venv/bin/python tests/bench/run_bench.py --qlora-memory   # adds LoRA vs QLoRA on a ~300M model

What it does, all in one invocation on one machine:

1. Builds (and caches under tests/bench/out/, which git ignores) a byte-level BPE tokenizer of about
   8k entries trained on the project's sample datasets, with a ChatML chat template, and random-weight
   Llama models of about 2M and 30M parameters with that tokenizer (a ~300M one for --qlora-memory).
2. Builds one dataset per length profile (--profiles, default realistic,short), seeded and cached under
   OUT/data/, and measures each row's token length as the engine tokenizes it (bench tokenizer, ChatML):
   - realistic: alpaca rows (instruction, input mostly empty, output) whose total token length is
     log-normal (median 180, sigma 0.9, capped at 4x cutoff_len), so about a third of the rows are cut at
     cutoff_len as in public instruction sets (alpaca, dolly, oasst); the prompt is 10-60 tokens (a
     sample dataset's instruction, continued with corpus words), the output the rest, words taken from
     assets/models/corpus/web-heldout.txt at a random offset (wrapping) until the row reaches its target.
   - short: the same kind of rows with log-normal total lengths of median 40, sigma 0.5, within 12-128.
   - conversations (the earlier data): the sample datasets' instruction pairs grouped into sharegpt
     conversations of log-normally many turns.
   Per profile it prints and reports rows, median/p90/max token length and the share over cutoff_len.
   A fixed held-out split (data.val_size, seed) is shared by every run of a profile.
3. Per profile and model size (LoRA r8 all-linear, bs 4, cutoff 256, one epoch, same config file), each
   repeat runs in rotation: the engine with train.packing auto (A), the plain script (B), the engine with
   packing on, the engine with packing off; so A B A B holds for engine vs plain. The engine is
   `python launch.py train CONFIG`, the plain script `python tests/bench/plain_trainer.py CONFIG`, both
   subprocesses. Reported per run and as a ratio (engine auto vs plain): non-padding tokens per second
   of the training loop, the process wall time for one epoch over the same rows (start of the process
   to exit: imports, loading, tokenizing, training, evaluation, saving), the training loop alone
   (Trainer's train_runtime), peak memory (ru_maxrss of the child from wait4 on CPU, max allocated
   on GPU, as each process reports it), and the loss on the held-out rows, computed by this script
   for auto and plain from the saved adapters (token-weighted mean cross-entropy over the assistant
   tokens; skipped for packing on and off). A second table sets auto against on and off: training loop
   and whole process per run, tokens/s, the batching each run used (metrics.json "batching"), and
   whether auto's median training loop is within the runs' spread of the better of on and off. A line
   says where the engine's whole process went, phase by phase, from its status events (events.jsonl).
   Engine runs after the first on the same rows read them from the tokenized-rows cache
   (engine/data/tokcache.py, WORKBENCH_CACHE_DIR), as a user's later runs do; the plain script tokenizes each time.
4. Every method through the engine on the first profile's rows for one epoch (so the same number of
   tokens): trainable params and %, adapter size on disk, tokens/s, peak memory, eval loss.
5. MFU: achieved training FLOP/s over the matmul peak measured in the same invocation.
   FLOPs per non-padding token = 6N for full fine-tuning (forward 2N, backward 4N), 4N for methods
   whose base is frozen (forward 2N, backward 2N for the activation gradients only), where N is the
   number of weights in the base model's matmuls: every nn.Linear of the decoder blocks plus the
   lm_head (the embedding lookup is not a matmul; norms, attention scores, LoRA's own rank-r matmuls
   and prompt tokens are not counted, a few % at these sizes, so MFU is slightly understated).
   Peak: the best FLOP/s of timed torch.mm at the model's GEMM shapes (tokens of one batch x hidden x
   {hidden, intermediate, vocab}) plus a 2048^3 square, fp32 on the CPU (bf16 on a GPU), with torch's
   default thread count, which is also what the training subprocesses use; measured before, between
   and after the runs, and the highest measurement is used (the conservative choice).

On a GPU (CUDA present) the engine picks bf16 by itself, the plain script uses bf16, QLoRA runs 4-bit
on CUDA and memory is max allocated. Nothing in the test suite needs a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402

DATASETS = ROOT / "assets" / "datasets"
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
# The sample text is too small for 8k BPE merges (the tokenizer ends up with about 3k entries); the models'
# embedding and lm_head are padded to 8192 rows, as many real models pad their vocabulary.
MODEL_VOCAB = 8192
METHODS = ["lora", "dora", "qlora4", "qlora8", "prefix", "prompt", "ptuning", "ia3", "full"]
# Learning rate per method family: the usual order of magnitude for each (soft prompts and IA3 need far
# larger steps than LoRA); the same for every size.
LR = {"prefix": 1e-2, "prompt": 1e-2, "ptuning": 1e-2, "ia3": 1e-2, "full": 1e-4}


@dataclass(frozen=True)
class Size:
    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int


SIZES = {
    "2m": Size("2m", hidden=96, layers=4, heads=4, intermediate=256),
    "30m": Size("30m", hidden=512, layers=6, heads=8, intermediate=1536),
    "300m": Size("300m", hidden=1024, layers=24, heads=16, intermediate=2816),
}


# ---------------------------------------------------------------------------------------------- assets


def sample_pairs() -> list[tuple[str, str]]:
    """(user, assistant) pairs from every chat-shaped sample dataset."""
    import csv

    pairs: list[tuple[str, str]] = []
    for row in json.loads((DATASETS / "instructions_sharegpt.json").read_text(encoding="utf-8")):
        turns = row["conversations"]
        pairs += [(a["value"], b["value"]) for a, b in zip(turns[::2], turns[1::2], strict=False)]
    for line in (DATASETS / "instructions_openai.jsonl").read_text(encoding="utf-8").splitlines():
        msgs = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
        pairs += [(a["content"], b["content"]) for a, b in zip(msgs[::2], msgs[1::2], strict=False)]
    with (DATASETS / "qa_prompt_completion.csv").open(encoding="utf-8") as f:
        pairs += [(r["prompt"], r["completion"]) for r in csv.DictReader(f)]
    for row in json.loads((DATASETS / "identity_alpaca.json").read_text(encoding="utf-8")):
        pairs.append(((row["instruction"] + "\n" + row.get("input", "")).strip(), row["output"]))
    return pairs


def build_dataset(path: Path, rows: int, seed: int = 0) -> Path:
    """Conversations of log-normally many turns (median 4, long tail) drawn from the sample pairs."""
    rng = random.Random(seed)
    pairs = sample_pairs()
    out = []
    for _ in range(rows):
        turns = min(40, 1 + int(rng.lognormvariate(math.log(3.0), 0.8)))
        conv = []
        for user, assistant in rng.sample(pairs, turns):
            conv += [{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]
        out.append({"conversations": conv})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, indent=0), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- profiles

CORPUS = ROOT / "assets" / "models" / "corpus" / "web-heldout.txt"
PROFILE_VERSION = 1  # in the cached files' names: bump it when a generator changes


@dataclass(frozen=True)
class Profile:
    name: str
    format: str  # data.format in the run config
    about: str  # for the report


PROFILES = {
    "realistic": Profile("realistic", "alpaca",
                         "alpaca rows (instruction, input mostly empty, output) of log-normal total token length "
                         "(median 180, sigma 0.9, capped at 4x cutoff), the prompt 10-60 tokens, words from "
                         "assets/models/corpus/web-heldout.txt; shaped like public instruction sets (alpaca, dolly, "
                         "oasst): many short rows, about a third cut at the cutoff"),
    "short": Profile("short", "alpaca",
                     "alpaca rows of log-normal total token length (median 40, sigma 0.5, within 12-128), words "
                     "from assets/models/corpus/web-heldout.txt"),
    "conversations": Profile("conversations", "sharegpt",
                             "sharegpt conversations of log-normally many turns (median 4) built from the "
                             "instruction pairs of assets/datasets"),
}
# Total token length per row (bench tokenizer, ChatML): log-normal median and sigma, lower and upper bound
# (None: 4x cutoff).
TARGETS: dict[str, tuple[float, float, int, int | None]] = {
    "realistic": (180.0, 0.9, 24, None),
    "short": (40.0, 0.5, 12, 128),
}
INPUT_SHARE = {"realistic": 0.2, "short": 0.1}  # rows whose alpaca `input` is not empty


def token_lengths(records: list[dict], fmt: str, tokenizer: Any) -> list[int]:
    """Each row's token count as the engine tokenizes it (format normalised, chat template, no cutoff)."""
    from engine.data import formats
    from engine.data import pipeline as data

    _, stats = data.tokenize_rows(formats.normalise(records, fmt, "bench"), tokenizer, 10**9, "truncate")
    return stats.lengths


class _Words:
    """The corpus as words, read from any offset (wrapping around), with each word's token count after a space."""

    def __init__(self, tokenizer: Any) -> None:
        self.words = CORPUS.read_text(encoding="utf-8").split()
        self.tokenizer = tokenizer
        self.costs: dict[str, int] = {}

    def cost(self, word: str) -> int:
        if word not in self.costs:
            self.costs[word] = len(self.tokenizer(" " + word, add_special_tokens=False)["input_ids"])
        return self.costs[word]

    def run(self, start: int, count: int) -> list[str]:
        return [self.words[(start + i) % len(self.words)] for i in range(count)]

    def take(self, words: list[str], budget: int) -> list[str]:
        """The shortest prefix of `words` (at least one word) of about `budget` tokens or more."""
        total, out = 0, []
        for word in words:
            if out and total >= budget:
                break
            out.append(word)
            total += self.cost(word)
        return out


def profile_row(name: str, rng: random.Random, words: _Words, prompts: list[str], tokenizer: Any,
                cutoff: int, overhead: int) -> dict[str, str]:
    """One alpaca row of the profile: a target total length drawn, the prompt a part of it, and as many of the
    output's words as keep the row, tokenized as the engine does, within the target (it ends a word short of it
    at most)."""
    median, sigma, low, high = TARGETS[name]
    total = min(high or 4 * cutoff, max(low, round(rng.lognormvariate(math.log(median), sigma))))
    room = max(2, total - overhead)
    if name == "realistic":
        prompt_tokens = max(1, min(rng.randint(10, 60), room // 2))
    else:
        prompt_tokens = max(1, round(room * rng.uniform(0.25, 0.5)))
    corpus_at = rng.randrange(len(words.words))
    instruction_words = rng.choice(prompts).split() + words.run(corpus_at, prompt_tokens)
    with_input = prompt_tokens >= 6 and rng.random() < INPUT_SHARE[name]
    instruction = words.take(instruction_words, prompt_tokens // 3 if with_input else prompt_tokens)
    left = prompt_tokens - sum(words.cost(w) for w in instruction)
    extra = words.take(words.run(rng.randrange(len(words.words)), max(left, 1) + 4), left) if with_input else []
    row = {"instruction": " ".join(instruction), "input": " ".join(extra), "output": ""}
    # the output: a run of corpus words long enough for any target (every word is at least one token)
    output = words.run(rng.randrange(len(words.words)), total + 8)
    budget = total - token_lengths([{**row, "output": output[0]}], "alpaca", tokenizer)[0] + words.cost(output[0])
    count = len(words.take(output, budget))

    def length(n: int) -> int:
        return token_lengths([{**row, "output": " ".join(output[:n])}], "alpaca", tokenizer)[0]

    # the most words that keep the row within its target (one word at least)
    while count < len(output) and length(count + 1) <= total:
        count += 1
    while count > 1 and length(count) > total:
        count -= 1
    row["output"] = " ".join(output[:count])
    return row


def build_profile(name: str, folder: Path, rows: int, tokenizer: Any, cutoff: int = 256, seed: int = 0) -> Path:
    """The profile's dataset (PROFILES), deterministic for (rows, cutoff, seed); cached in `folder`."""
    if name == "conversations":
        return build_dataset(folder / f"bench_sharegpt_{rows}.json", rows, seed)
    path = folder / f"bench_{name}_{rows}_cutoff{cutoff}_seed{seed}_v{PROFILE_VERSION}.json"
    if path.exists():
        return path
    rng = random.Random(f"{name}-{seed}")
    words = _Words(tokenizer)
    prompts = [user for user, _ in sample_pairs() if user.strip()]
    overhead = token_lengths([{"instruction": "a", "input": "", "output": "a"}], "alpaca", tokenizer)[0] - 2
    out = [profile_row(name, rng, words, prompts, tokenizer, cutoff, overhead) for _ in range(rows)]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=0), encoding="utf-8")
    tmp.replace(path)
    return path


def length_summary(path: Path, fmt: str, tokenizer: Any, cutoff: int) -> dict[str, Any]:
    """Rows, median / p90 / max token length (nearest rank) and the share of rows over `cutoff`."""
    lengths = sorted(token_lengths(json.loads(path.read_text(encoding="utf-8")), fmt, tokenizer))
    n = len(lengths)
    return {"rows": n, "median": statistics.median(lengths), "p90": lengths[max(0, math.ceil(0.9 * n) - 1)],
            "max": lengths[-1], "over_cutoff": sum(x > cutoff for x in lengths) / n, "cutoff": cutoff,
            "tokens": sum(lengths)}


def summary_text(summary: dict[str, Any]) -> str:
    return (f"{summary['rows']} rows, token length median {summary['median']:g}, p90 {summary['p90']}, "
            f"max {summary['max']}; {summary['over_cutoff']:.0%} of rows over the cutoff {summary['cutoff']}")


def build_tokenizer(path: Path, vocab_size: int = 8192):
    """Byte-level BPE trained on the sample datasets, ChatML specials and template; cached at `path`."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (path / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(path)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from engine.data.tokens import CHATML_TEMPLATE

    files = [p for p in sorted(DATASETS.iterdir()) if p.suffix in (".json", ".jsonl", ".csv", ".txt")]
    files += sorted((ROOT / "assets" / "models" / "corpus").glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in files]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="<pad>",
                                        additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(path)
    return tokenizer


def build_model(path: Path, size: Size, tokenizer_dir: Path) -> Path:
    """A random-weight LlamaForCausalLM of `size` with the benchmark tokenizer; cached at `path`."""
    spec = {"stored": "bfloat16" if size.name == "300m" else "float32", "hidden": size.hidden, "layers": size.layers,
            "heads": size.heads, "intermediate": size.intermediate}
    marker = path / "bench_spec.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return path
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=max(len(tokenizer), MODEL_VOCAB), hidden_size=size.hidden, intermediate_size=size.intermediate,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.heads,
        max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if size.name == "300m":
        model = model.to(torch.bfloat16)  # stored in bf16 like hub checkpoints; the engine loads it in fp32 on CPU
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    marker.write_text(json.dumps(spec))
    return path


def matmul_params(model_dir: Path) -> tuple[int, int]:
    """(N, total): weights of every nn.Linear (decoder blocks + lm_head), and all parameters."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return n, sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- peak


def matmul_peak(size: Size, vocab: int, tokens: int, seconds: float = 0.4) -> float:
    """Best FLOP/s of torch.mm at the model's GEMM shapes (and a 2048^3 square), same threads as training."""
    import torch

    gpu = torch.cuda.is_available()
    dev, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)
    h, i = size.hidden, size.intermediate
    shapes = [(tokens, h, h), (tokens, h, i), (tokens, i, h), (tokens, h, vocab), (2048, 2048, 2048)]
    best = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, device=dev, dtype=dtype)
        b = torch.randn(k, n, device=dev, dtype=dtype)
        torch.mm(a, b)
        reps, elapsed = 0, 0.0
        while elapsed < seconds:
            if gpu:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(4):
                torch.mm(a, b)
            if gpu:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            elapsed += dt
            reps += 4
            best = max(best, 4 * 2 * m * k * n / dt)
    return best


# ---------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    kind: str  # engine | plain (which packing an engine run had: its label, and metrics "packing"/"batching")
    label: str
    metrics: dict[str, Any]
    wall_s: float
    maxrss_mb: float
    heldout_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# One repeat of a profile and size, in order: the engine with train.packing auto (A), the plain script (B), the
# engine with packing on, then off; so engine auto vs plain alternates A B A B.
ROTATION = ("auto", "plain", "on", "off")
# Where each kind's runs are kept in an A/B entry's "runs" (engine auto under "engine", as before packing on/off)
RUN_KEYS = {"auto": "engine", "plain": "plain", "on": "on", "off": "off"}


def write_config(path: Path, model_dir: Path, data_path: Path, out_dir: Path, method: str, *, epochs: float,
                 max_steps: int | None, batch_size: int, cutoff: int, val_size: float, lr: float | None = None,
                 packing: str = "auto", max_samples: int | None = None, lora_dropout: float = 0.05,
                 data_format: str = "sharegpt") -> Path:
    name, bits = method, None
    if method.startswith("qlora"):
        name, bits = "qlora", int(method[5:] or 4)
    method_cfg: dict[str, Any] = {"name": name, "r": 8, "lora_alpha": 16, "lora_dropout": lora_dropout,
                                  "target_modules": "all-linear"}
    if bits:
        method_cfg["bits"] = bits
    train: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "cutoff_len": cutoff,
                             "learning_rate": lr or LR.get(method, 2e-4), "seed": 42, "packing": packing}
    if max_steps:
        train["max_steps"] = max_steps
    data: dict[str, Any] = {"path": str(Path(data_path).resolve()), "format": data_format, "val_size": val_size}
    if max_samples:
        data["max_samples"] = max_samples
    config = {"model": {"name_or_path": str(Path(model_dir).resolve())}, "method": method_cfg, "data": data,
              "train": train, "output_dir": str(Path(out_dir).resolve())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_child(argv: list[str], log: Path) -> tuple[float, float, int]:
    """Run a subprocess; (wall seconds, ru_maxrss MB of that child alone, exit code)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def engine_batching(metrics: dict) -> str:
    """The engine's batching and its estimated padding share, from the run's own log line (metrics.json)."""
    line = metrics.get("batching", "")
    if "train.packing: on" in line:
        return "packed (train.packing: on)"
    if metrics.get("packing"):
        found = re.search(r"packed rows (\d+)%", line)
        return f"{found[1] if found else '?'}% (packed, estimated)" if "per-example" not in line else "0% (packed)"
    found = re.search(r"padding is (\d+)%", line)
    return f"{found[1]}% (length-grouped, estimated)" if found else "(length-grouped)"


def engine_run(config: Path, out_dir: Path, label: str) -> Run:
    started = time.time()
    wall, rss, code = run_child([sys.executable, "launch.py", "train", str(config)], out_dir.with_suffix(".log"))
    if code != 0:
        raise RuntimeError(f"engine run {label} failed ({code}); see {out_dir.with_suffix('.log')}")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    run = Run("engine", label, metrics, wall, rss)
    run.extra["phases"] = engine_phases(out_dir / "events.jsonl", started, wall)
    return run


PHASES = {  # the engine's status that ends each phase of its process (events.jsonl), in order
    "python, config": "starting",
    "imports": "loading_data",
    "data (read, tokenize)": "loading_model",
    "model (load, adapter)": "training",
    "training loop, eval": "saving",
}


def engine_phases(events: Path, started: float, wall: float) -> dict[str, float]:
    """Seconds of the engine process per phase, from its status events' times; the last phase (saving the
    weights, final metrics, exit) ends at the process's exit."""
    times = {}
    for line in events.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("kind") == "status":
            times.setdefault(event["state"], event["t"])
    phases, last = {}, started
    for phase, state in PHASES.items():
        phases[phase] = times[state] - last
        last = times[state]
    phases["save, exit"] = started + wall - last
    return phases


def phases_line(runs: list[Run]) -> str:
    """Where the engine's whole-process time went, median over its runs."""
    names = list(runs[0].extra["phases"])
    parts = [f"{name} {statistics.median(r.extra['phases'][name] for r in runs):.1f} s" for name in names]
    return "Where the engine's whole process went (median of its runs, from its status events): " + \
        ", ".join(parts) + "."


def plain_run(config: Path, out_dir: Path, label: str) -> Run:
    argv = [sys.executable, str(BENCH / "plain_trainer.py"), str(config), str(out_dir)]
    wall, rss, code = run_child(argv, out_dir.with_suffix(".log"))
    if code != 0:
        raise RuntimeError(f"plain run {label} failed ({code}); see {out_dir.with_suffix('.log')}")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    return Run("plain", label, metrics, wall, rss)


def split_rows(config: Path) -> tuple[list[dict], list[dict]]:
    """The train and held-out rows exactly as both runs tokenize them (engine.data.pipeline.build_splits)."""
    from engine.config import load_config
    from engine.data import pipeline as data
    from engine.model.loading import load_tokenizer

    cfg = load_config(config)
    tokenizer = load_tokenizer(cfg.model)
    data.ensure_chat_template(tokenizer)
    train, val, _ = data.build_splits(cfg, tokenizer)
    return train, val


def heldout_loss(model_dir: Path, adapter_dir: Path, rows: list[dict]) -> float:
    """Token-weighted mean cross-entropy over the labelled (assistant) tokens of `rows`, one row at a time."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    gpu = torch.cuda.is_available()
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).to("cuda" if gpu else "cpu").eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]], device=model.device)
            labels = torch.tensor([row["labels"]], device=model.device)
            logits = model(input_ids=ids).logits[0, :-1].float()
            target = labels[0, 1:]
            keep = target != -100
            total += torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum").item()
            count += int(keep.sum())
    return total / max(count, 1)


# ---------------------------------------------------------------------------------------------- report


def load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import peft
        import transformers

        info["transformers"], info["peft"] = transformers.__version__, peft.__version__
    except ImportError:
        pass
    return info


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def runs_text(values: list[float], digits: int = 1) -> str:
    return " / ".join(fmt(v, digits) for v in values)


def ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b) if b and statistics.median(b) else float("nan")


def best_time(repeats: int, step) -> float:
    """The shortest of `repeats` timings of `step()`, in seconds (the bench's small scripts use it)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return min(times)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="the default: 120 rows, engine vs plain on 30M, methods on 2M")
    mode.add_argument("--full", action="store_true", help="480 rows, engine vs plain and methods on 2M and 30M")
    p.add_argument("--sizes", default=None,
                   help="model sizes for engine vs plain (quick: 30m; full: 2m,30m; '' skips it)")
    p.add_argument("--method-sizes", default=None, help="model sizes for the methods table (default: 2m; full: 2m,30m)")
    p.add_argument("--repeats", type=int, default=None,
                   help="rotations (engine auto, plain, engine packing on, engine packing off) per profile and size "
                        "(quick 2, full 2)")
    p.add_argument("--rows", type=int, default=None, help="rows of benchmark data (quick 120, full 480)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps instead of one epoch")
    p.add_argument("--methods", default=",".join(METHODS), help="methods for the methods table ('' skips it)")
    p.add_argument("--profiles", default="realistic,short",
                   help=f"length profiles of the data, comma-separated, from {', '.join(PROFILES)} "
                        "(each runs engine auto, plain, engine packing on, engine packing off per repeat; "
                        "the methods table uses the first)")
    p.add_argument("--qlora-memory", action="store_true", help="LoRA vs QLoRA 4-bit peak memory on a ~300M model")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/OpenMP threads for every process (default: torch's default, one per core); "
                        "on a machine other jobs keep busy, 1 thread avoids OpenMP barrier stalls")
    p.add_argument("--lora-dropout", type=float, default=0.05,
                   help="LoRA dropout on both sides (0.05 as the peft docs use; the engine's own default is 0)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--cutoff", type=int, default=256)
    p.add_argument("--out", type=Path, default=BENCH / "out")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    return p.parse_args(argv)


def profiles_of(names: str) -> list[str]:
    """The length profiles named in --profiles, comma-separated; SystemExit for one that does not exist."""
    profiles = [x for x in names.split(",") if x]
    unknown = [x for x in profiles if x not in PROFILES]
    if unknown:
        raise SystemExit(f"unknown profile {', '.join(unknown)}: choose from {', '.join(PROFILES)}")
    return profiles


def profile_data(name: str, folder: Path, rows: int, tokenizer: Any, cutoff: int) -> dict[str, Any]:
    """The rows of length profile `name` written under `folder`, and what the results say of them."""
    path = build_profile(name, folder, rows, tokenizer, cutoff)
    summary = length_summary(path, PROFILES[name].format, tokenizer, cutoff)
    print(f"profile {name}: {summary_text(summary)} ({path})", flush=True)
    return {"about": PROFILES[name].about, "format": PROFILES[name].format, "path": str(path), "summary": summary,
            "ab": {}}


def use_threads(threads: int | None) -> None:
    """--threads for this process and every training subprocess (which inherit OMP_NUM_THREADS)."""
    if not threads:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def qlora_memory(big: Path, runs_dir: Path, data_path: Path | None, fmt: str | None, cutoff: int,
                 started: float) -> dict[str, Any]:
    """LoRA vs QLoRA memory on a model whose weights dominate memory (`big`, ~300M): one short run each."""
    result: dict[str, Any] = {"N_total": matmul_params(big)[1]}
    for method in ("lora", "qlora4"):
        label = f"mem-300m-{method}"
        run_out = runs_dir / label
        cfg = write_config(runs_dir / f"{label}.yaml", big, data_path, run_out, method, epochs=1, max_steps=3,
                           batch_size=1, cutoff=cutoff, val_size=0.0, max_samples=8, data_format=fmt)
        print(f"[{time.time() - started:6.0f}s] {label} (load {load_avg()})", flush=True)
        result[method] = engine_run(cfg, run_out, label)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    full = args.full
    sizes = [s for s in (args.sizes if args.sizes is not None else ("2m,30m" if full else "30m")).split(",") if s]
    method_sizes = [s for s in (args.method_sizes or ("2m,30m" if full else "2m")).split(",") if s]
    repeats = args.repeats or 2
    rows = args.rows or (480 if full else 120)
    methods = [m for m in args.methods.split(",") if m]
    profiles = profiles_of(args.profiles)
    out = args.out
    started = time.time()
    load_before = load_avg()
    command = "python tests/bench/run_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])

    use_threads(args.threads)
    print(f"machine: {machine()}  load {load_before}", flush=True)
    tok_dir = out / "tokenizer"
    tokenizer = build_tokenizer(tok_dir)
    val_size = 0.1
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs_dir = out / "runs" / stamp
    peaks: list[float] = []
    bs, cutoff = args.batch_size, args.cutoff

    # the methods table and QLoRA's memory use the first profile's rows
    first = profiles[0] if profiles else "realistic"
    data = {name: profile_data(name, out / "data", rows, tokenizer, cutoff)
            for name in dict.fromkeys(profiles + ([first] if methods or args.qlora_memory else []))}
    results: dict[str, Any] = {"machine": machine(), "command": command.strip(), "load_before": load_before,
                               "profiles": {name: data[name] for name in profiles}, "methods": {},
                               "methods_profile": first, "peaks": peaks, "rows": rows, "cutoff": cutoff}
    # the first profile's engine-vs-plain results under "ab", keyed by size, as before there were profiles
    results["ab"] = data[profiles[0]]["ab"] if profiles else {}
    all_sizes = list(dict.fromkeys(sizes + (method_sizes if methods else []) + (["30m"] if not sizes else [])))
    model_dirs = {s: build_model(out / "models" / s, SIZES[s], tok_dir) for s in all_sizes}
    n_params = {s: matmul_params(model_dirs[s]) for s in all_sizes}
    vocab = max(len(tokenizer), MODEL_VOCAB)
    results["N"] = {s: n_params[s][0] for s in all_sizes}

    def peak_now(s: str, tokens: int) -> float:
        value = matmul_peak(SIZES[s], vocab, tokens)
        peaks.append(value)
        return value

    # ---- per profile and size: engine auto (A), plain script (B), engine packing on, engine packing off
    for name in profiles:
        data_path, fmt = Path(data[name]["path"]), PROFILES[name].format
        for s in sizes:
            same = {"epochs": 1, "max_steps": args.max_steps, "batch_size": bs, "cutoff": cutoff,
                    "val_size": val_size, "lora_dropout": args.lora_dropout, "data_format": fmt}
            cfg = write_config(runs_dir / f"ab-{name}-{s}.yaml", model_dirs[s], data_path, runs_dir / "unused",
                               "lora", **same)
            train_rows, val_rows = split_rows(cfg)
            train_tokens = sum(len(r["input_ids"]) for r in train_rows)
            batch_tokens = max(64, int(train_tokens / len(train_rows) * bs))
            peak_now(s, batch_tokens)
            ab: dict[str, list[Run]] = {kind: [] for kind in RUN_KEYS.values()}
            for rep in range(repeats):
                for kind in ROTATION:
                    label = f"{kind}-{name}-{s}-{rep + 1}"
                    run_out = runs_dir / label
                    # the plain script reads the very config the engine's auto run reads
                    cfg_k = write_config(runs_dir / f"{label}.yaml", model_dirs[s], data_path, run_out, "lora",
                                         packing="auto" if kind == "plain" else kind, **same)
                    print(f"[{time.time() - started:6.0f}s] {label} (load {load_avg()})", flush=True)
                    run = (plain_run if kind == "plain" else engine_run)(cfg_k, run_out, label)
                    if kind in ("auto", "plain"):  # packing on/off: no held-out loss, to save time
                        run.heldout_loss = heldout_loss(model_dirs[s], run_out / "adapter", val_rows)
                    tokens = train_tokens if not args.max_steps else None
                    run.extra.update(
                        packing=kind, tokens=tokens, steps=run.metrics["steps"], train_s=run.metrics["train_s"],
                        tokens_per_s=(tokens / run.metrics["train_s"]) if tokens else run.metrics["tokens_per_s"],
                        batching=run.metrics.get("batching"), packed=bool(run.metrics.get("packing")))
                    ab[RUN_KEYS[kind]].append(run)
                    loss = f" held-out loss {run.heldout_loss:.4f}" if run.heldout_loss is not None else ""
                    chose = f"; {run.extra['batching']}" if run.extra["batching"] else ""
                    print(f"    wall {run.wall_s:.1f}s train {run.metrics['train_s']:.1f}s "
                          f"{run.extra['tokens_per_s']:.0f} tok/s rss {run.maxrss_mb:.0f} MB{loss}{chose}", flush=True)
                peak_now(s, batch_tokens)
            n, total = n_params[s]
            data[name]["ab"][s] = {"runs": ab, "N": n, "total_params": total, "train_rows": len(train_rows),
                                   "lora_dropout": args.lora_dropout,
                                   "val_rows": len(val_rows), "train_tokens": train_tokens,
                                   "target_tokens": sum(sum(x != -100 for x in r["labels"]) for r in train_rows)}

    # ---- every method through the engine
    data_path, fmt = (Path(data[first]["path"]), PROFILES[first].format) if first in data else (None, None)
    for s in method_sizes if methods else []:
        cfg0 = write_config(runs_dir / f"m-{s}.yaml", model_dirs[s], data_path, runs_dir / "unused", "lora",
                            epochs=1, max_steps=args.max_steps, batch_size=bs, cutoff=cutoff, val_size=val_size,
                            data_format=fmt)
        train_rows, _ = split_rows(cfg0)
        train_tokens = sum(len(r["input_ids"]) for r in train_rows)
        peak_now(s, max(64, int(train_tokens / len(train_rows) * bs)))
        results["methods"][s] = {}
        for method in methods:
            label = f"method-{s}-{method}"
            run_out = runs_dir / label
            cfg = write_config(runs_dir / f"{label}.yaml", model_dirs[s], data_path, run_out, method, epochs=1,
                               max_steps=args.max_steps, batch_size=bs, cutoff=cutoff, val_size=val_size,
                               lora_dropout=args.lora_dropout, data_format=fmt)
            print(f"[{time.time() - started:6.0f}s] {label} (load {load_avg()})", flush=True)
            try:
                run = engine_run(cfg, run_out, label)
            except RuntimeError as error:
                print(f"    FAILED: {error}", flush=True)
                results["methods"][s][method] = {"error": str(error)}
                continue
            tokens = train_tokens if not args.max_steps else None
            run.extra["tokens_per_s"] = tokens / run.metrics["train_s"] if tokens else run.metrics["tokens_per_s"]
            results["methods"][s][method] = run
            print(f"    {run.extra['tokens_per_s']:.0f} tok/s rss {run.maxrss_mb:.0f} MB "
                  f"eval {run.metrics.get('eval_loss')}", flush=True)

    if args.qlora_memory:
        big = build_model(out / "models" / "300m", SIZES["300m"], tok_dir)
        results["qlora_memory"] = qlora_memory(big, runs_dir, data_path, fmt, cutoff, started)

    if peaks == []:
        peaks.append(matmul_peak(SIZES[(sizes or method_sizes or ["30m"])[0]], vocab, 512))
    results["load_after"] = load_avg()
    results["elapsed_s"] = time.time() - started
    text = render(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text, encoding="utf-8")
    print(text, flush=True)
    (runs_dir / "results.json").parent.mkdir(parents=True, exist_ok=True)
    as_json = to_json({k: v for k, v in results.items() if k != "ab"})  # "ab" repeats the first profile's
    (runs_dir / "results.json").write_text(json.dumps(as_json, indent=1), encoding="utf-8")
    return results


def flops_per_token(method: str, n: int) -> int:
    return 6 * n if method == "full" else 4 * n


def to_json(results: dict[str, Any]) -> Any:
    if isinstance(results, Run):
        return {"kind": results.kind, "label": results.label, "wall_s": results.wall_s, "maxrss_mb": results.maxrss_mb,
                "heldout_loss": results.heldout_loss, "metrics": results.metrics, **results.extra}
    if isinstance(results, dict):
        return {k: to_json(v) for k, v in results.items()}
    if isinstance(results, list):
        return [to_json(v) for v in results]
    return results


def mfu(tokens_per_s: float, method: str, n: int, peak: float) -> float:
    return tokens_per_s * flops_per_token(method, n) / peak


def ab_table(s: str, ab: dict[str, Any], peak: float, gpu: bool, mem: str) -> list[str]:
    """Engine (train.packing auto) vs the plain script, one size of one profile."""
    e, p = ab["runs"]["engine"], ab["runs"]["plain"]
    lines = [
        f"### Engine vs hand-written Trainer + peft script, {s} model "
        f"({ab['total_params'] / 1e6:.2f}M params, N = {ab['N'] / 1e6:.2f}M)",
        "",
        f"LoRA r8 all-linear, dropout {ab['lora_dropout']}, batch size 4, cutoff 256, one epoch over "
        f"{ab['train_rows']} rows "
        f"({ab['train_tokens']:,} tokens, {ab['target_tokens']:,} trained), held-out loss on "
        f"{ab['val_rows']} rows; the engine with train.packing auto (A) and the plain script (B) alternate "
        "A B A B (the packing on and off runs come after each B). Ratio = engine median / plain median "
        "(for times and memory: plain / engine, so > 1 means the engine is better).",
        "",
        "| figure | engine (A) runs | plain script (B) runs | ratio |",
        "|---|---|---|---|",
    ]
    tps_e = [r.extra["tokens_per_s"] for r in e]
    tps_p = [r.extra["tokens_per_s"] for r in p]
    lines.append(f"| non-padding tokens/s (training loop) | {runs_text(tps_e, 0)} | {runs_text(tps_p, 0)} | "
                 f"{ratio(tps_e, tps_p):.2f}x |")
    wall_e, wall_p = [r.wall_s for r in e], [r.wall_s for r in p]
    lines.append(f"| wall time, one epoch, whole process (s) | {runs_text(wall_e)} | {runs_text(wall_p)} | "
                 f"{ratio(wall_p, wall_e):.2f}x faster |")
    tr_e, tr_p = [r.metrics["train_s"] for r in e], [r.metrics["train_s"] for r in p]
    lines.append(f"| training loop, one epoch (s) | {runs_text(tr_e)} | {runs_text(tr_p)} | "
                 f"{ratio(tr_p, tr_e):.2f}x faster |")
    if gpu:
        mem_e, mem_p = [r.metrics["peak_memory_mb"] for r in e], [r.metrics["peak_memory_mb"] for r in p]
    else:
        mem_e, mem_p = [r.maxrss_mb for r in e], [r.maxrss_mb for r in p]
    lines.append(f"| {mem} (MB) | {runs_text(mem_e, 0)} | {runs_text(mem_p, 0)} | "
                 f"{ratio(mem_p, mem_e):.2f}x lower |")
    lo_e, lo_p = [r.heldout_loss for r in e], [r.heldout_loss for r in p]
    lines.append(f"| held-out loss after one epoch | {runs_text(lo_e, 4)} | {runs_text(lo_p, 4)} | "
                 f"{statistics.median(lo_e) - statistics.median(lo_p):+.4f} (engine - plain) |")
    mf_e = [mfu(t, "lora", ab["N"], peak) for t in tps_e]
    mf_p = [mfu(t, "lora", ab["N"], peak) for t in tps_p]
    lines.append(f"| MFU (4N) | {runs_text([100 * x for x in mf_e])}% | {runs_text([100 * x for x in mf_p])}% | "
                 f"{ratio(mf_e, mf_p):.2f}x |")
    pad = [r.metrics.get("padding_fraction") for r in p]
    lines.append(f"| padding share of positions | {engine_batching(e[0].metrics)} | "
                 f"{runs_text([100 * x for x in pad])}% (unsorted) | |")
    lines += ["", phases_line(e), ""]
    return lines


def packing_verdict(runs: dict[str, list[Run]]) -> dict[str, Any]:
    """Auto against the better of packing on and off, by median training loop (Trainer's train_runtime).

    spread: the A/B spread, for each kind of run in the rotation (auto, on, off, and the plain script where given),
    (max - min) / median of its training-loop runs; the largest of them.
    within: auto's median is at most `spread` above the better one's (faster than it counts as within).
    same: auto trained with the same batching as the better one (its difference is then run-to-run noise)."""
    times = {kind: [r.metrics["train_s"] for r in group] for kind, group in runs.items()}
    median = {kind: statistics.median(values) for kind, values in times.items()}
    better = min(("on", "off"), key=lambda kind: median[kind])
    spreads = {kind: (max(values) - min(values)) / median[kind] for kind, values in times.items()}
    widest = max(spreads, key=lambda kind: spreads[kind])
    diff = median["auto"] / median[better] - 1
    packed = [bool(r.metrics.get("packing")) for r in runs["auto"]]
    same = all(p == (better == "on") for p in packed)
    return {"better": better, "better_s": median[better], "auto_s": median["auto"], "diff": diff,
            "spread": spreads[widest], "spread_kind": widest, "within": diff <= spreads[widest], "same": same}


def packing_table(s: str, runs: dict[str, list[Run]]) -> list[str]:
    """train.packing auto vs on vs off (engine runs of one size of one profile), and the verdict line."""
    lines = [f"### Packing auto vs on vs off, {s} model", "",
             "The engine on the same config but train.packing; tokens/s are non-padding tokens over the training "
             "loop; batching is the engine's own line (metrics.json).", "",
             "| packing | training loop (s), each run | whole process (s), each run | non-padding tokens/s, median "
             "| batching the engine used |", "|---|---|---|---|---|"]
    for kind in ("auto", "on", "off"):  # the plain script's runs only widen the spread
        group = runs[kind]
        used = "; ".join(dict.fromkeys((r.metrics.get("batching") or "?").removeprefix("batching: ") for r in group))
        tps = statistics.median([r.extra["tokens_per_s"] for r in group])
        lines.append(f"| {kind} | {runs_text([r.metrics['train_s'] for r in group])} | "
                     f"{runs_text([r.wall_s for r in group])} | {tps:,.0f} | "
                     f"{'auto chose: ' if kind == 'auto' else ''}{used} |")
    v = packing_verdict(runs)
    lines += ["", f"Better of on/off by median training loop: {v['better']} ({v['better_s']:.2f} s); auto "
              f"{v['auto_s']:.2f} s, {v['diff']:+.1%} against {v['better']}"
              + (f" (auto trained with the same batching as {v['better']}: the difference is run-to-run noise)"
                 if v["same"] else "")
              + f". A/B spread (per kind, (max - min) / median of its training-loop runs; the largest among "
              f"{'/'.join(runs)}): {v['spread']:.1%} ({v['spread_kind']}). "
              f"Auto is within the spread of the better of on/off: **{'yes' if v['within'] else 'no'}**.", ""]
    return lines


def render(results: dict[str, Any]) -> str:
    import torch

    peak = max(results["peaks"])
    gpu = torch.cuda.is_available()
    m = results["machine"]
    mem = "max allocated" if gpu else "peak RSS"
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{results['command']}` ({results['elapsed_s'] / 60:.1f} min)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} with {m['torch_threads']} threads"
        + (f", GPU {m['gpu']}" if m["gpu"] else ", no GPU")
        + f"; transformers {m.get('transformers')}, peft {m.get('peft')}. "
        f"Load average (1/5/15 min) before: {results['load_before']}, after: {results['load_after']}.",
        "",
        f"Matmul peak ({'bf16' if gpu else 'fp32'} torch.mm at the models' GEMM shapes, best of "
        f"{len(results['peaks'])} measurements in this invocation): {peak / 1e9:.1f} GFLOP/s "
        f"(range {min(results['peaks']) / 1e9:.1f}-{peak / 1e9:.1f}). MFU = non-padding tokens/s x FLOPs per "
        "token / peak, FLOPs per token = 4N for frozen-base methods and 6N for full fine-tuning, N = weights "
        "of every nn.Linear (decoder blocks + lm_head).",
        "",
        f"Data: {results['rows']} rows per length profile (token lengths as the engine tokenizes them with the "
        "bench tokenizer and ChatML, before the cutoff), 10% held out (the same rows for every run of a profile). "
        "Per profile and size each repeat runs the engine with train.packing auto (A), the plain script (B), the "
        "engine with packing on, the engine with packing off, in that order.",
        "",
    ]
    for name, prof in results.get("profiles", {}).items():
        lines += [f"## Profile `{name}`", "", f"{prof['about'][0].upper()}{prof['about'][1:]} "
                  f"(data.format {prof['format']}).", "", f"Lengths: {summary_text(prof['summary'])}.", ""]
        for s, ab in prof["ab"].items():
            lines += ab_table(s, ab, peak, gpu, mem)
            lines += packing_table(s, {kind: ab["runs"][key] for kind, key in RUN_KEYS.items()})
    for s, table in results["methods"].items():
        n = results["N"][s]
        lines += [f"## Every method through the engine, {s} model", "",
                  f"Data: the `{results.get('methods_profile', 'realistic')}` profile's rows. "
                  "One epoch over the same rows (the same tokens) for each; batch size 4, cutoff 256; learning rate "
                  "2e-4 for the LoRA family, 1e-4 for full, 1e-2 for prefix/prompt/P-tuning/IA3. Eval loss is the "
                  "engine's own (metrics.json) on the held-out rows. Random-weight base: losses compare methods, "
                  "they say nothing about quality on a real model.", "",
                  f"| method | trainable params | trainable % | adapter on disk (MB) | tokens/s | {mem} (MB) | "
                  "eval loss | MFU |", "|---|---|---|---|---|---|---|---|"]
        for method, run in table.items():
            if isinstance(run, dict):
                lines.append(f"| {method} | failed: {run['error'][:80]} | | | | | | |")
                continue
            mt = run.metrics
            memv = mt["peak_memory_mb"] if gpu else run.maxrss_mb
            mf = mfu(run.extra["tokens_per_s"], method, n, peak)
            lines.append(f"| {method} | {mt['trainable_params']:,} | {mt['trainable_percent']:.3f} | "
                         f"{mt['weights_size_mb']:.3f} | {run.extra['tokens_per_s']:.0f} | {memv:.0f} | "
                         f"{fmt(mt.get('eval_loss'), 4)} | {fmt(100 * mf if mf else None)}% |")
        lines.append("")
    if "qlora_memory" in results:
        q = results["qlora_memory"]
        lo, ql = q["lora"], q["qlora4"]
        mem_l = lo.metrics["peak_memory_mb"] if gpu else lo.maxrss_mb
        mem_q = ql.metrics["peak_memory_mb"] if gpu else ql.maxrss_mb
        lines += [f"## LoRA vs QLoRA (4-bit NF4) peak memory, {q['N_total'] / 1e6:.0f}M-parameter model", "",
                  "Batch size 1, 3 steps, engine defaults otherwise.", "",
                  f"| method | {mem} (MB) | wall (s) |", "|---|---|---|",
                  f"| lora (fp32 base) | {mem_l:.0f} | {lo.wall_s:.0f} |",
                  f"| qlora 4-bit | {mem_q:.0f} | {ql.wall_s:.0f} |",
                  f"| reduction | {100 * (1 - mem_q / mem_l):.0f}% | |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
