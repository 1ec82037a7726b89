"""Peak memory and step time where the logits dominate (issue 23): a random-weight model with a large vocabulary
and a small hidden size, LoRA, every batch full (rows cut at the cutoff). Three kinds of run, A B C A B C in one
invocation, each a subprocess whose peak RSS is its own (wait4):

    A  the engine: the head and the loss only where labels train, in chunks (engine/train/logits.py)
    B  the plain Trainer + peft script (tests/bench/plain_trainer.py, unchanged): full logits
    C  the engine with full logits, as before issue 23 (tests/bench/full_logits_engine.py)

    .venv/bin/python tests/bench/logits_memory.py                       # vocab 151,936, hidden 128, 2 repeats
    .venv/bin/python tests/bench/logits_memory.py --vocab 65536 --repeats 1 --steps 3
    .venv/bin/python tests/bench/logits_memory.py --model assets/models/workbench-demo-5m --cutoff 512  # nothing slower

It also prints the pre-flight bound (engine/train/preflight.py) of the model's step before and after, and of a
Qwen2.5-0.5B-shaped model (vocabulary 151,936, hidden 896, 24 layers; built on the meta device, nothing is
allocated): the largest batch size at each cutoff the check admits on this machine's free memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parents[1]))
sys.path.insert(0, str(BENCH))

from run_bench import ROOT, build_tokenizer, engine_run, plain_run, run_child, write_config  # noqa: E402

CORPUS = ROOT / "assets" / "models" / "corpus" / "web-heldout.txt"
LLAMA_1B = BENCH / "out" / "llama-1b-shape"  # built once, shared by the GPU benches (tests/bench/gpu_session.sh)


def build_model(path: Path, tokenizer_dir: Path, vocab: int, hidden: int, layers: int) -> Path:
    """A random-weight Qwen2 (tied embeddings, as Qwen2.5-0.5B) with the bench tokenizer; cached at `path`."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def long_rows(path: Path, rows: int, words: int) -> Path:
    """Alpaca rows of `words` corpus words each (longer than the cutoff: every batch is full), a short prompt."""
    text = CORPUS.read_text(encoding="utf-8").split()
    out = []
    for i in range(rows):
        start = (i * 997) % len(text)
        body = (text[start:] + text)[:words]
        out.append({"instruction": f"Continue the text ({i}): " + " ".join(body[:20]), "input": "",
                    "output": " ".join(body[20:])})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out), encoding="utf-8")
    return path


def old_engine_run(config: Path, out_dir: Path) -> dict:
    wall, rss, code = run_child([sys.executable, str(BENCH / "full_logits_engine.py"), str(config)],
                                out_dir.with_suffix(".log"))
    if code != 0:
        raise RuntimeError(f"full-logits engine run failed ({code}); see {out_dir.with_suffix('.log')}")
    return {"metrics": json.loads((out_dir / "metrics.json").read_text()), "rss": rss}


def preflight_bounds(model_dir: Path, cutoffs: list[int], batch: int) -> list[str]:
    """The pre-flight bound before and after, on the bench model and on a Qwen2.5-0.5B shape (meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, Qwen2Config

    from engine.train.preflight import GIB, available_memory, estimate

    free, where = available_memory()
    qwen = Qwen2Config(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)
    lines = [f"Free {where} now: {free / GIB:.1f} GiB (what the check compares against, beside the weights)."]
    for name, config in (("bench model", AutoConfig.from_pretrained(model_dir)), ("Qwen2.5-0.5B shape", qwen)):
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        trainable = 8 * 2 * config.hidden_size * 7 * config.num_hidden_layers  # LoRA r8 on 7 projections, roughly
        for cutoff in cutoffs:
            step = {chunked: estimate(model, trainable, [cutoff] * batch, batch, False, chunked=chunked)
                    for chunked in (False, True)}
            admitted = {chunked: largest_admitted(model, trainable, cutoff, free, chunked) for chunked in step}
            lines.append(f"{name}, batch {batch} x cutoff {cutoff}: bound {step[False].total / GIB:.2f} GiB before "
                         f"(logits {step[False].logits / GIB:.2f}), {step[True].total / GIB:.2f} GiB after (logits "
                         f"{step[True].logits / GIB:.2f}); largest batch admitted at this cutoff: "
                         f"{admitted[False]} before, {admitted[True]} after")
    return lines


def largest_admitted(model, trainable: int, cutoff: int, free: int, chunked: bool) -> int:
    """The largest batch size (up to 4,096; 0: none) whose bound the check admits, by bisection."""
    from engine.train.preflight import estimate

    def fits(size: int) -> bool:
        step = estimate(model, trainable, [cutoff] * size, size, False, chunked=chunked)
        return step.total - step.weights <= free

    low, high = 0, 4096  # fits(low) holds (or low is 0); the answer is in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab", type=int, default=151_936)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--cutoff", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--model", type=Path, help="an existing model folder instead of the random Qwen2 shape "
                   "(--vocab, --hidden and --layers are then ignored)")
    p.add_argument("--llama-1b", action="store_true", help="a random model of Llama-3.2-1B's shape (vocabulary "
                   "128,256, hidden 2,048, 16 layers, tied embeddings), stored in bf16, instead of the Qwen2 shape")
    p.add_argument("--kinds", default="ABC", help="which runs, in this order per repeat: A the engine's chunked "
                   "loss (train.kernels: none), L the engine with Liger Kernel (train.kernels: liger; CUDA only), "
                   "B the plain script, C the engine with full logits")
    p.add_argument("--out", type=Path, default=BENCH / "out" / "logits")
    p.add_argument("--bounds-only", action="store_true", help="print the pre-flight bounds, run nothing")
    args = p.parse_args(argv)
    if args.model:
        model = args.model.resolve()
    elif args.llama_1b:
        tokenizer_dir = BENCH / "out" / "tokenizer"
        build_tokenizer(tokenizer_dir)
        model = build_llama_1b(LLAMA_1B, tokenizer_dir)
    else:
        tokenizer_dir = BENCH / "out" / "tokenizer"
        build_tokenizer(tokenizer_dir)
        model = build_model(args.out / f"qwen2-v{args.vocab}-h{args.hidden}-l{args.layers}", tokenizer_dir,
                            args.vocab, args.hidden, args.layers)
    if args.bounds_only:
        return print_bounds(model, args)
    rows = args.batch_size * args.steps
    data = long_rows(args.out / f"long_{rows}_{args.cutoff}.json", rows, words=args.cutoff)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    runs: dict[str, list[dict]] = {kind: [] for kind in args.kinds}
    for repeat in range(args.repeats):
        for kind in args.kinds:
            out_dir = args.out / "runs" / f"{kind}{repeat}"
            config = write_config(args.out / "runs" / f"{kind}{repeat}.yaml", model, data, out_dir, "lora",
                                  epochs=1, max_steps=args.steps, batch_size=args.batch_size, cutoff=args.cutoff,
                                  val_size=0.0, packing="off", data_format="alpaca")
            set_kernels(config, "liger" if kind == "L" else "none")
            if kind in "AL":
                run = engine_run(config, out_dir, f"A{repeat}")
                runs[kind].append({"metrics": run.metrics, "rss": run.maxrss_mb})
            elif kind == "B":
                run = plain_run(config, out_dir, f"B{repeat}")
                runs[kind].append({"metrics": run.metrics, "rss": run.maxrss_mb})
            else:
                runs[kind].append(old_engine_run(config, out_dir))
            last = runs[kind][-1]
            print(f"{kind}{repeat}: peak RSS {last['rss']:,.0f} MB, peak reported by the run "
                  f"{last['metrics']['peak_memory_mb']:,.0f} MB, {last['metrics']['tokens_per_s']:,.0f} tokens/s, "
                  f"{last['metrics']['train_s'] / args.steps:.2f} s/step", flush=True)
    print(report(args, runs))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print_bounds(model, args)


def set_kernels(config: Path, kernels: str) -> None:
    """train.kernels in the config `config` (the engine's; the plain script ignores it)."""
    import yaml

    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values["train"]["kernels"] = kernels
    config.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


def build_llama_1b(path: Path, tokenizer_dir: Path) -> Path:
    """A random-weight model of Llama-3.2-1B's shape with the bench tokenizer, stored in bf16; cached at `path`."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=128_256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=8192,
                         tie_word_embeddings=True, rope_theta=500_000.0, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def print_bounds(model: Path, args: argparse.Namespace) -> None:
    for line in preflight_bounds(model, sorted({args.cutoff, 1024, 2048, 4096}), args.batch_size):
        print("- " + line)


def report(args: argparse.Namespace, runs: dict[str, list[dict]]) -> str:
    """The table: on the CPU peak RSS (wait4), on a GPU the peak the run reports (torch.cuda.max_memory_allocated),
    each against the plain script's (B) where it ran."""
    import torch

    gpu = torch.cuda.is_available()
    names = {"A": "engine, trained positions in chunks (A)", "L": "engine with Liger Kernel (L)",
             "B": "plain Trainer + peft script (B)", "C": "engine, full logits as before (C)"}
    names = {kind: name for kind, name in names.items() if kind in runs}
    peak = (lambda r: r["metrics"]["peak_memory_mb"]) if gpu else (lambda r: r["rss"])
    shape = ("a random model of Llama-3.2-1B's shape (vocabulary 128,256, hidden 2,048, 16 layers, tied embeddings)"
             if args.llama_1b else f"the model in {args.model}" if args.model else
             f"Qwen2-shaped random model, vocabulary {args.vocab:,}, hidden {args.hidden}, {args.layers} layers, "
             "tied embeddings")
    where = f"bf16 on {torch.cuda.get_device_name(0)} (GPU figures)" if gpu else "fp32 on the CPU"
    measure = "peak allocated on the GPU (MB)" if gpu else "peak RSS (MB)"
    lines = [f"{shape[0].upper()}{shape[1:]}; LoRA r8 all-linear, batch {args.batch_size}, cutoff {args.cutoff} "
             f"(every row cut there), {args.steps} steps, {where}.", "",
             f"| run | {measure}, each run | tokens/s, each run | s/step, median | peak vs B |",
             "|---|---|---|---|---|"]
    plain = statistics.median(peak(r) for r in runs["B"]) if "B" in runs else None
    for kind, name in names.items():
        peaks = [peak(r) for r in runs[kind]]
        rate = [r["metrics"]["tokens_per_s"] for r in runs[kind]]
        step = statistics.median(r["metrics"]["train_s"] / args.steps for r in runs[kind])
        ratio = f"{statistics.median(peaks) / plain:.2f}x" if plain else "-"
        lines.append(f"| {name} | {' / '.join(f'{x:,.0f}' for x in peaks)} | "
                     f"{' / '.join(f'{x:,.0f}' for x in rate)} | {step:.2f} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
