"""Peak memory and step time where the logits dominate (issue 23): a random-weight model with a large vocabulary
and a small hidden size, LoRA, every batch full (rows cut at the cutoff). Three kinds of run, A B C A B C in one
invocation, each a subprocess whose peak RSS is its own (wait4):

    A  the engine: the head and the loss only where labels train, in chunks (engine/train/logits.py)
    B  the plain Trainer + peft script (tests/bench/plain_trainer.py, unchanged): full logits
    C  the engine with full logits, as before issue 23 (tests/bench/full_logits_engine.py)

    .venv/bin/python tests/bench/logits_memory.py                       # vocab 151,936, hidden 128, 2 repeats
    .venv/bin/python tests/bench/logits_memory.py --vocab 65536 --repeats 1 --steps 3

It also prints the pre-flight bound (engine/train/preflight.py) of the model's step before and after, and of a
Qwen2.5-0.5B-shaped model (vocabulary 151,936, hidden 896, 24 layers; built on the meta device, nothing is
allocated): the largest batch size at each cutoff the check admits on this machine's free memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parents[1]))
sys.path.insert(0, str(BENCH))

from run_bench import ROOT, build_tokenizer, engine_run, plain_run, run_child, write_config  # noqa: E402

CORPUS = ROOT / "assets" / "models" / "corpus" / "web-heldout.txt"


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
                         f"{step[True].logits / GIB:.2f}); largest power-of-two batch admitted at this cutoff: "
                         f"{admitted[False]} before, {admitted[True]} after")
    return lines


def largest_admitted(model, trainable: int, cutoff: int, free: int, chunked: bool) -> int:
    """The largest power-of-two batch size (up to 4,096; 0: none) whose bound the check admits."""
    from engine.train.preflight import estimate

    size = 0
    while size < 4096:
        step = estimate(model, trainable, [cutoff] * max(1, size * 2), max(1, size * 2), False, chunked=chunked)
        if step.total - step.weights > free:
            break
        size = max(1, size * 2)
    return size


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab", type=int, default=151_936)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--cutoff", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=BENCH / "out" / "logits")
    args = p.parse_args(argv)
    tokenizer_dir = BENCH / "out" / "tokenizer"
    build_tokenizer(tokenizer_dir)
    model = build_model(args.out / f"qwen2-v{args.vocab}-h{args.hidden}-l{args.layers}", tokenizer_dir, args.vocab,
                        args.hidden, args.layers)
    rows = args.batch_size * args.steps
    data = long_rows(args.out / f"long_{rows}_{args.cutoff}.json", rows, words=args.cutoff)
    runs: dict[str, list[dict]] = {"A": [], "B": [], "C": []}
    for repeat in range(args.repeats):
        for kind in "ABC":
            out_dir = args.out / "runs" / f"{kind}{repeat}"
            config = write_config(args.out / "runs" / f"{kind}{repeat}.yaml", model, data, out_dir, "lora",
                                  epochs=1, max_steps=args.steps, batch_size=args.batch_size, cutoff=args.cutoff,
                                  val_size=0.0, packing="off", data_format="alpaca")
            if kind == "A":
                run = engine_run(config, out_dir, f"A{repeat}")
                runs[kind].append({"metrics": run.metrics, "rss": run.maxrss_mb})
            elif kind == "B":
                run = plain_run(config, out_dir, f"B{repeat}")
                runs[kind].append({"metrics": run.metrics, "rss": run.maxrss_mb})
            else:
                runs[kind].append(old_engine_run(config, out_dir))
            last = runs[kind][-1]
            print(f"{kind}{repeat}: peak RSS {last['rss']:,.0f} MB, {last['metrics']['tokens_per_s']:,.0f} tokens/s, "
                  f"{last['metrics']['train_s'] / args.steps:.2f} s/step", flush=True)
    print(report(args, runs))
    for line in preflight_bounds(model, [args.cutoff, 2048, 4096], args.batch_size):
        print("- " + line)


def report(args: argparse.Namespace, runs: dict[str, list[dict]]) -> str:
    names = {"A": "engine, trained positions in chunks (A)", "B": "plain Trainer + peft script (B)",
             "C": "engine, full logits as before (C)"}
    lines = [f"Qwen2-shaped random model, vocabulary {args.vocab:,}, hidden {args.hidden}, {args.layers} layers, "
             f"tied embeddings; LoRA r8 all-linear, batch {args.batch_size}, cutoff {args.cutoff} (every row cut "
             f"there), {args.steps} steps, fp32 on the CPU.", "",
             "| run | peak RSS (MB), each run | tokens/s, each run | s/step, median | peak RSS vs B |",
             "|---|---|---|---|---|"]
    plain = statistics.median(r["rss"] for r in runs["B"])
    for kind, name in names.items():
        rss = [r["rss"] for r in runs[kind]]
        rate = [r["metrics"]["tokens_per_s"] for r in runs[kind]]
        step = statistics.median(r["metrics"]["train_s"] / args.steps for r in runs[kind])
        lines.append(f"| {name} | {' / '.join(f'{x:,.0f}' for x in rss)} | {' / '.join(f'{x:,.0f}' for x in rate)} "
                     f"| {step:.2f} | {statistics.median(rss) / plain:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
