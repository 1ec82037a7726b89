"""Each distributed strategy with one process on one GPU, through the launcher a user's run takes (issue 27), and
DPO with LoRA in bf16 (issue 21): the figures a GPU session records.

    python3 tests/bench/gpu_strategies.py [--only NAME ...] [--steps 10] [--home DIR]

Each case trains the random model of Llama-3.2-1B's shape (tests/bench/logits_memory.build_llama_1b: 1.2 B
parameters, stored in bf16, the engine loads it in bf16 on a GPU) through `python launch.py train CONFIG`: alpaca
rows of corpus words longer than the cutoff (every batch full), or, for DPO, the sample's preference pairs. It
prints, per case, the exit code, the run log's `distributed:` and `kernels:` lines (what the engine chose), the
first and last loss, tokens/s and the peaks the run reports (metrics.json: allocated and reserved on the GPU).
On a machine without CUDA the cases still run (fp32 on the CPU; FSDP is refused there with its sentence), which
is how this script is checked before a GPU session: `--only none-lora --model DIR --steps 2` on a small model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from logits_memory import LLAMA_1B, build_llama_1b, long_rows  # noqa: E402
from run_bench import build_tokenizer  # noqa: E402

from tests.cli import engine_env, write_config  # noqa: E402

PAIRS = ROOT / "assets" / "datasets" / "preference_pairs.jsonl"
LORA = {"name": "lora", "r": 16, "lora_alpha": 32, "target_modules": "all-linear"}
# name: (method, train options, distributed options or None for a plain single-process run)
CASES = {
    "none-lora": (LORA, {}, None),
    "ddp-lora": (LORA, {}, {"strategy": "ddp"}),
    "fsdp-lora": (LORA, {}, {"strategy": "fsdp"}),
    "zero3-lora": (LORA, {}, {"strategy": "deepspeed", "zero_stage": 3}),
    "zero3-qlora": ({**LORA, "name": "qlora"}, {}, {"strategy": "deepspeed", "zero_stage": 3}),
    "fsdp-full": ({"name": "full"}, {"batch_size": 2}, {"strategy": "fsdp"}),
    "zero3-full": ({"name": "full"}, {"batch_size": 2}, {"strategy": "deepspeed", "zero_stage": 3}),
    "dpo-lora": (LORA, {"stage": "dpo", "beta": 0.1, "cutoff_len": 512}, None),
}


def run_case(home: Path, name: str, model: Path, rows: Path, steps: int, cutoff: int) -> dict:
    import yaml

    method, options, distributed = CASES[name]
    out = home / "runs" / name
    data = PAIRS if options.get("stage") == "dpo" else rows
    train = {"max_steps": steps, "batch_size": 4, "cutoff_len": cutoff, "learning_rate": 1e-4, "packing": "off",
             "save_steps": 10_000, "report_to": "none", **options}
    config = write_config(home / "runs" / f"{name}.yaml", model, data, out, method=method, train=train)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["data"]["val_size"] = 0.0
    if distributed is not None:
        raw["distributed"] = {"nproc_per_node": 1, **distributed}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "launch.py", "train", str(config), "--overwrite"], cwd=ROOT,
                          env=engine_env(), capture_output=True, text=True)
    wall = time.perf_counter() - started
    log = (out / "train.log").read_text(encoding="utf-8") if (out / "train.log").exists() else done.stdout
    chose = [line.split(" engine: ", 1)[-1] for line in log.splitlines()  # train.log: "DATE TIME LEVEL engine: ..."
             if "distributed:" in line or "kernels:" in line]
    losses = [float(line.split("loss ")[1].split()[0]) for line in done.stdout.splitlines()
              if line.startswith("step ") and "loss " in line]
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    if done.returncode:
        print(f"{name} failed ({done.returncode}):\n{done.stderr[-2000:]}", file=sys.stderr, flush=True)
    return {"name": name, "exit": done.returncode, "chose": chose, "losses": losses, "wall_s": wall,
            "tokens_per_s": metrics.get("tokens_per_s"), "peak_mb": metrics.get("peak_memory_mb"),
            "reserved_mb": metrics.get("peak_reserved_mb")}


def figure(value: float | None, form: str) -> str:
    return form.format(value) if value is not None else "-"


def row(r: dict) -> str:
    losses = f"{r['losses'][0]:.3f} → {r['losses'][-1]:.3f}" if r["losses"] else "-"
    return (f"| {r['name']} | {r['exit']} | {'; '.join(r['chose']) or '-'} | {losses} | "
            f"{figure(r['tokens_per_s'], '{:,.0f}')} | {figure(r['peak_mb'], '{:,.0f}')} | "
            f"{figure(r['reserved_mb'], '{:,.0f}')} | {r['wall_s']:.0f} |")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="these cases only, in this order")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cutoff", type=int, default=1024)
    parser.add_argument("--model", type=Path, help="a model folder instead of the Llama-3.2-1B shape")
    parser.add_argument("--home", type=Path, help="folder for the model and runs (a temporary one by default)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="gpu-strategies-"))
    (home / "runs").mkdir(parents=True, exist_ok=True)
    if args.model:
        model = args.model.resolve()
    else:
        build_tokenizer(BENCH / "out" / "tokenizer")
        model = build_llama_1b(LLAMA_1B, BENCH / "out" / "tokenizer")
    rows = long_rows(home / "rows.json", 4 * args.steps, words=args.cutoff)
    device = torch.cuda.get_device_name(0) + " (GPU figures)" if torch.cuda.is_available() else "the CPU"
    print(f"On {device}, torch {torch.__version__}; model {model.name}, {args.steps} steps, cutoff {args.cutoff}.\n")
    print("| case | exit | what the engine chose | loss, first → last | tokens/s | peak allocated MB | "
          "peak reserved MB | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.only or CASES:
        print(row(run_case(home, name, model, rows, args.steps, args.cutoff)), flush=True)


if __name__ == "__main__":
    main()
