"""The memory estimate on the demo's short rows, before and after it used the data's measured lengths (issue 26
item 3): the demo comparison (assets/compare_demo.yaml: the 5M demo model, the identity set, batch 4, cutoff 256)
trained for one epoch (8 steps of 4 of its 32 training rows, so the batch of the longest rows is trained) with the
methods below, each in its own engine process (`launch.py compare`, evaluation off), and for each method:

    before    engine.estimate.memory.estimate from config.json alone: batch_size rows of cutoff_len tokens
    after     the same with the data's measured token lengths (what the comparison wrote to estimate.json)
    measured  the run's peak RSS (its metrics.json, through the table)

    .venv/bin/python tests/bench/compare_estimate.py                    # trains, then prints the table
    .venv/bin/python tests/bench/compare_estimate.py --folder DIR        # a comparison already run: only prints
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from engine.compare.table import CompareDir  # noqa: E402
from engine.config_compare import run_config  # noqa: E402
from engine.estimate import memory  # noqa: E402

METHODS = ["lora", "qlora", "ia3", "prompt", "full"]


def run(folder: Path) -> None:
    demo = yaml.safe_load((ROOT / "assets" / "compare_demo.yaml").read_text(encoding="utf-8"))
    demo.update(methods=METHODS, evaluate=False, output_dir=str(folder / "compare"), runs_dir=str(folder / "runs"))
    demo["model"]["name_or_path"] = str(ROOT / "assets" / "models" / "workbench-demo-5m")
    demo["data"]["path"] = str(ROOT / "assets" / "datasets" / "identity_alpaca.json")
    demo["train"].update(max_steps=8, save_steps=100)
    path = folder / "demo_estimate.yaml"
    path.write_text(yaml.safe_dump(demo), encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "launch.py"), "compare", str(path)], check=True, cwd=ROOT)


def report(folder: Path) -> None:
    compare = CompareDir(folder / "compare")
    config = compare.read_config()
    table = json.loads(compare.table_json.read_text(encoding="utf-8"))
    saved = json.loads((compare.path / "estimate.json").read_text(encoding="utf-8"))
    model = json.loads((Path(config.model.name_or_path) / "config.json").read_text(encoding="utf-8"))
    print(f"demo data: {saved.get('lengths')}; batch {config.train.batch_size}, cutoff {config.train.cutoff_len}")
    print(f"{'method':8} {'before MiB':>10} {'after MiB':>10} {'measured':>9} {'err before':>10} {'err after':>10}")
    for row in table["rows"]:
        before = memory.estimate(run_config(config, row["method"], compare.path), model, "cpu").total / memory.MIB
        after, measured = saved["methods"][row["method"]]["total_mb"], row["peak_memory_mb"]
        errors = [100 * (value - measured) / measured for value in (before, after)]
        print(f"{row['method']:8} {before:10.0f} {after:10.0f} {measured:9.0f} {errors[0]:+9.1f}% {errors[1]:+9.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", help="a folder this script ran in before (its compare/ and runs/)")
    args = parser.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="compare-estimate-"))
    if not args.folder:
        run(folder)
    report(folder)


if __name__ == "__main__":
    main()
