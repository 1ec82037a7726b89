"""Dataset inspection of big files, the way the page runs it: one `python -m engine inspect-data` process with
the environment the web server gives it (webui/jobs/commands.py: killed with the server, memory capped). Writes
a file of each format of about --megabytes (alpaca rows of varied length), inspects it with and without the
demo model's tokenizer, and prints the process's peak memory (its ru_maxrss, from wait4 in a small launcher)
and wall time.

    .venv/bin/python tests/bench/inspect_big.py [--megabytes 300] [--formats jsonl,json,csv,txt,parquet]

tests/engine/test_inspect_bounds.py imports write_dataset and measure from here.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.__main__ import PARENT_ENV  # noqa: E402
from webui.jobs import commands as engine_cli  # noqa: E402

DEMO_MODEL = ROOT / "assets" / "models" / "workbench-demo-5m"
WORDS = ["the", "a", "model", "data", "train", "token", "cutoff", "length", "answer", "question", "why", "how", "what",
         "learn", "adapter", "rank", "weights", "batch", "step", "loss"]
FORMATS = ("jsonl", "json", "csv", "txt", "parquet")


def row_pool(count: int = 1000, words: float = 3.5, seed: int = 0) -> list[dict]:
    """Alpaca rows whose answers have a log-normal number of words (median e**words)."""
    rnd = random.Random(seed)
    return [{"instruction": " ".join(rnd.choices(WORDS, k=8)) + f" #{i}?", "input": "",
             "output": " ".join(rnd.choices(WORDS, k=max(1, int(rnd.lognormvariate(words, 0.8)))))}
            for i in range(count)]


def write_dataset(path: Path, megabytes: float, pool: list[dict] | None = None) -> int:
    """Write rows from `pool` (cycled) until the file holds about `megabytes`; returns the number of rows.
    The format follows the suffix: .jsonl, .json (one top-level list), .csv, .txt (output paragraphs),
    .parquet."""
    pool = pool or row_pool()
    suffix = path.suffix
    if suffix == ".parquet":
        return _write_parquet(path, megabytes, pool)
    pieces = {".jsonl": [json.dumps(row) + "\n" for row in pool],
              ".json": [json.dumps(row) + ",\n" for row in pool],
              ".csv": [_csv_line(row) for row in pool],
              ".txt": [row["output"] + "\n\n" for row in pool]}[suffix]
    target, size, rows = int(megabytes * (1 << 20)), 0, 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write({".json": "[\n", ".csv": "instruction,input,output\r\n"}.get(suffix, ""))
        while size < target:
            piece = pieces[rows % len(pieces)]
            handle.write(piece)
            size += len(piece)
            rows += 1
        if suffix == ".json":
            handle.write(json.dumps(pool[rows % len(pool)]) + "\n]\n")
            rows += 1
    return rows


def _csv_line(row: dict) -> str:
    import io

    out = io.StringIO()
    csv.writer(out).writerow([row["instruction"], row["input"], row["output"]])
    return out.getvalue()


def _write_parquet(path: Path, megabytes: float, pool: list[dict]) -> int:
    """One row group for the whole file (as pandas writes up to a million rows), plain encoding, uncompressed:
    the hardest case for reading only the first rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_row = sum(len(json.dumps(row)) for row in pool) / len(pool)
    rows = max(1, int(megabytes * (1 << 20) / per_row))
    block = pa.Table.from_pylist(pool)
    table = pa.concat_tables([block] * (rows // len(pool)) + [block.slice(0, rows % len(pool))])
    pq.write_table(table, path, row_group_size=rows, compression="none", use_dictionary=False)
    return rows


@dataclass
class Measured:
    answer: dict
    peak_mb: float  # the inspecting process's own ru_maxrss
    seconds: float


# A child's ru_maxrss starts at the high-water mark of the process it was forked from (the kernel records the
# old memory's peak at exec), so the inspection is started from this small launcher rather than from a big
# test process; the launcher stands in for the server as the parent the inspection dies with.
LAUNCHER = """
import json, os, subprocess, sys
if os.environ.get(sys.argv[2]):
    os.environ[sys.argv[2]] = str(os.getpid())
process = subprocess.Popen(sys.argv[3:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"peak_kb": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, out)
"""


def measure(path: Path, model: Path | None = None, timeout: float = 600) -> Measured:
    """Run inspect-data on `path` as the web server does (its argv and environment) and measure the process."""
    args = engine_cli.inspect_args(path, model=str(model) if model else None, cutoff_len=512)
    with tempfile.TemporaryDirectory() as scratch:
        out, err, peak = (Path(scratch) / name for name in ("out", "err", "peak.json"))
        began = time.monotonic()
        with open(out, "w") as stdout, open(err, "w") as stderr:
            subprocess.run([sys.executable, "-c", LAUNCHER, str(peak), PARENT_ENV, *engine_cli.engine_argv(*args)],
                           cwd=ROOT, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, timeout=timeout,
                           env=engine_cli.engine_env("inspect-data"), check=True)
        seconds = time.monotonic() - began
        usage = json.loads(peak.read_text())
        lines = out.read_text().strip().splitlines()
        if usage["code"] != 0 or not lines:
            raise RuntimeError(f"inspect-data ended with {usage['code']}: {err.read_text().strip()[-500:]}")
    return Measured(json.loads(lines[-1]), usage["peak_kb"] / 1024, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=300)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--keep", help="folder to write the files to (default: a temporary one, removed)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="inspect-big-"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| file | size (MB) | rows | tokenizer | peak RSS (MB) | time (s) | rows counted | measured on |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in args.formats.split(","):
        path = folder / f"big.{fmt}"
        rows = write_dataset(path, args.megabytes)
        for model in (None, DEMO_MODEL):
            result = measure(path, model)
            answer = result.answer
            print(f"| {path.name} | {path.stat().st_size / (1 << 20):,.0f} | {rows:,} | "
                  f"{'demo' if model else 'none'} | {result.peak_mb:,.0f} | {result.seconds:.1f} | "
                  f"{answer['rows']:,} | {answer['sample_rows']:,} |", flush=True)
        if not args.keep:
            path.unlink()
    if not args.keep:
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
