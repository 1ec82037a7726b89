"""What the tokenized-rows cache (engine.data.tokcache) saves a later run on the same data: the time to tokenize the
benchmark's realistic profile afresh against reading it back, with the benchmark's tokenizer (ChatML).

    .venv/bin/python tests/bench/tokenize_cache.py [--rows 5000] [--cutoff 256]

Uses tests/bench/out/ (the tokenizer and data the benchmark builds) and a fresh cache folder in a temporary
directory; prints one line per measurement (the best of --repeats).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parents[1]))

import run_bench  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--cutoff", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    out = BENCH / "out"
    tokenizer = run_bench.build_tokenizer(out / "tokenizer")
    data_path = run_bench.build_profile("realistic", out / "data", args.rows, tokenizer, cutoff=args.cutoff)
    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="tokcache-bench-")

    from engine.config import RunConfig
    from engine.data import pipeline as data
    from engine.data import tokcache

    cfg = RunConfig.model_validate({
        "model": {"name_or_path": str(out / "tokenizer")}, "method": {"name": "lora"},
        "data": {"path": str(data_path), "format": "alpaca", "val_size": 0.1},
        "train": {"cutoff_len": args.cutoff}, "output_dir": str(Path(tempfile.mkdtemp()) / "run")})
    data.ensure_chat_template(tokenizer)
    fresh = run_bench.best_time(args.repeats, lambda: data.build_splits(cfg, tokenizer))
    first = run_bench.best_time(1, lambda: tokcache.tokenized_splits(cfg, tokenizer))
    train, val, stats, cached = tokcache.tokenized_splits(cfg, tokenizer)
    assert cached, "the second call did not read the cache"
    read = run_bench.best_time(args.repeats, lambda: tokcache.tokenized_splits(cfg, tokenizer))
    tokens = sum(len(r["input_ids"]) for r in train + val)
    print(f"{args.rows} realistic rows ({tokens:,} tokens after cutoff {args.cutoff}), data.format alpaca:")
    print(f"  tokenized afresh (engine.data.pipeline.build_splits):      {fresh:.2f} s")
    print(f"  first run with the cache (tokenize + write):       {first:.2f} s")
    print(f"  a later run (key + read the cached rows):          {read:.2f} s")


if __name__ == "__main__":
    main()
