"""Throughput of a run of several processes against one (issue 27): the engine's tokens/s (non-padding tokens of
every rank, metrics.json), with padding-free packing and with padded batches, on the same global batches.

    .venv/bin/python tests/bench/distributed_speed.py [--steps 30] [--processes 2] [--model DIR] [--repeats 1]

Each run trains LoRA on the demo model (or --model) for --steps steps of a global batch of 8 rows of the sample
instructions (assets/datasets/instructions_openai.jsonl, rows of uneven length), through `python launch.py train`: one
process of batch 8, then --processes processes of 8 / N each (DDP, gloo on the CPU, one thread per process there
so that N processes use the cores one process would). It prints the engine's batching line, tokens/s, the
training loop's seconds and the whole command's wall time. On a machine of 2 cores, 2 processes cannot be much
faster than one that already uses both cores; the point is that packing and the tokens/s figure hold in the
distributed case, and what the gloo all-reduce costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.cli import engine_env, write_config  # noqa: E402

DATA = ROOT / "assets" / "datasets" / "instructions_openai.jsonl"
DEMO = ROOT / "assets" / "models" / "workbench-demo-5m"
GLOBAL_BATCH = 8


def run(home: Path, model: Path, processes: int, packing: str, steps: int, label: str) -> dict:
    import yaml

    out = home / label
    config = write_config(home / f"{label}.yaml", model, DATA, out, method={"name": "lora", "r": 16},
                          train={"max_steps": steps, "batch_size": GLOBAL_BATCH // processes, "packing": packing,
                                 "learning_rate": 2e-4, "report_to": "none", "save_steps": 10_000,
                                 "cutoff_len": 512})
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["data"]["val_size"] = 0.0
    if processes > 1:
        raw["distributed"] = {"nproc_per_node": processes}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cores = os.cpu_count() or 1
    env = {**engine_env(), "OMP_NUM_THREADS": str(max(1, cores // processes))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "launch.py", "train", str(config), "--overwrite"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{label} failed ({done.returncode}): {done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"label": label, "processes": processes, "packing": packing, "batching": metrics.get("batching", ""),
            "tokens_per_s": metrics["tokens_per_s"], "train_s": metrics["train_s"], "wall_s": wall,
            "loss": metrics.get("train_loss")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--model", type=Path, default=DEMO)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="distributed-speed-"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores", flush=True)
    rows = []
    for repeat in range(args.repeats):
        for packing in ("on", "off"):
            for processes in (1, args.processes):
                rows.append(run(home, args.model.resolve(), processes, packing, args.steps,
                                f"p{processes}-{packing}-{repeat}"))
                r = rows[-1]
                print(f"{r['label']}: {r['tokens_per_s']:,.0f} tokens/s, loop {r['train_s']:.1f} s, "
                      f"wall {r['wall_s']:.1f} s", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| processes | train.packing | batching (the engine's line) | tokens/s | training loop s | wall s | "
          "train loss |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['packing']} | {r['batching']} | {r['tokens_per_s']:,.0f} | "
              f"{r['train_s']:.1f} | {r['wall_s']:.1f} | {r['loss']:.4f} |")


if __name__ == "__main__":
    main()
