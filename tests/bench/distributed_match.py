"""Do several processes train what one does? Each strategy of issue 27 on the CPU, against one process.

    .venv/bin/python tests/bench/distributed_match.py [--only NAME ...] [--home DIR]

Each case trains the tiny random Llama (tests/tiny.py) for 3 steps on 16 alpaca rows (packed, no dropout, a
constant rate) through `python launch.py train`: two processes of batch 2 (torchrun, gloo) and one process of batch
4, the same global batches. It prints, per case, the exit codes, the loss of each step of both runs, and the largest
difference between their saved weights (adapter/ or model/). The DeepSpeed cases need
`pip install -r requirements-distributed.txt` (their first run builds DeepSpeed's shm op: a C++ compiler, about
30 s); they are reported as skipped without it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.cli import MEMORISE, engine_env, write_config, write_rows  # noqa: E402
from tests.engine.test_preference import PAIRS  # noqa: E402
from tests.tiny import build_tiny_llama  # noqa: E402

TRAIN = {"max_steps": 3, "learning_rate": 1e-2, "lr_scheduler_type": "constant", "packing": "on",
         "report_to": "none"}
DPO = {"stage": "dpo", "beta": 0.1, "cutoff_len": 64, "packing": "off"}
# name: (method, train options, distributed options of the two-process run)
CASES = {
    "ddp-lora": ("lora", {}, {}),
    "ddp-qlora": ("qlora", {}, {}),
    "ddp-dpo-lora": ("lora", DPO, {}),
    "ddp-full": ("full", {}, {}),
    "ddp-freeze": ("freeze", {}, {}),
    "zero2-lora": ("lora", {}, {"strategy": "deepspeed", "zero_stage": 2}),
    "zero3-lora": ("lora", {}, {"strategy": "deepspeed", "zero_stage": 3}),
    "zero2-dpo-lora": ("lora", DPO, {"strategy": "deepspeed", "zero_stage": 2}),
    "zero3-dpo-lora": ("lora", DPO, {"strategy": "deepspeed", "zero_stage": 3}),
    "zero3-offload-full": ("full", {}, {"strategy": "deepspeed", "zero_stage": 3, "zero_offload": True}),
    "zero2-qlora": ("qlora", {}, {"strategy": "deepspeed", "zero_stage": 2}),
    "zero3-qlora": ("qlora", {}, {"strategy": "deepspeed", "zero_stage": 3}),
}
METHOD_OPTIONS = {"lora": {"lora_dropout": 0.0}, "qlora": {"lora_dropout": 0.0},
                  "freeze": {"freeze_trainable_layers": 1}}  # freeze: the last of the 2 layers trains
WHOLE_MODEL = ("full", "freeze")  # they save model/, the others adapter/


def train(home: Path, name: str, model: Path, case: tuple, processes: int) -> tuple[int, list[float], Path]:
    import yaml

    method, options, distributed = case
    rows = write_rows(home / f"{name}.json", PAIRS if options.get("stage") == "dpo" else MEMORISE * 4)
    out = home / f"{name}-{processes}"
    config = write_config(home / f"{name}-{processes}.yaml", model, rows, out,
                          method={"name": method, **METHOD_OPTIONS.get(method, {})},
                          train={**TRAIN, **options, "batch_size": 4 // processes})
    if processes > 1:
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        raw["distributed"] = {"nproc_per_node": processes, **distributed}
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    done = subprocess.run([sys.executable, "launch.py", "train", str(config), "--overwrite"], cwd=ROOT,
                          env=engine_env(), capture_output=True, text=True)
    losses = [float(line.split("loss ")[1].split()[0]) for line in done.stdout.splitlines()
              if line.startswith("step ")]
    if done.returncode:
        print(done.stderr[-1500:], file=sys.stderr)
    return done.returncode, losses, out / ("model" if method in WHOLE_MODEL else "adapter")


def held_line(log: Path) -> str:
    """The run log's line saying how much of the weights each process held (FSDP, ZeRO-3), else ''."""
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return next((line.split(" engine: ", 1)[-1] for line in lines if "each process holds" in line), "")


def largest_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    name = "model.safetensors" if a.name == "model" else "adapter_model.safetensors"
    x, y = load_file(a / name), load_file(b / name)
    assert x.keys() == y.keys()
    return max(float((x[k].float() - y[k].float()).abs().max()) for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="these cases only")
    parser.add_argument("--home", type=Path, help="folder for the model and runs (a temporary one by default)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="distributed-match-"))
    home.mkdir(parents=True, exist_ok=True)
    model = home / "tiny-llama"
    if not (model / "config.json").exists():
        build_tiny_llama(model)
    print("| case | exit (2 proc / 1 proc) | losses, 2 processes | losses, 1 process | largest weight difference |")
    print("|---|---|---|---|---|")
    for name in args.only or CASES:
        if CASES[name][2].get("strategy") == "deepspeed" and find_spec("deepspeed") is None:
            print(f"| {name} | skipped: deepspeed is not installed | | | |")
            continue
        two = train(home, name, model, CASES[name], 2)
        one = train(home, name, model, CASES[name], 1)
        diff = largest_difference(two[2], one[2]) if two[0] == one[0] == 0 else float("nan")
        print(f"| {name} | {two[0]} / {one[0]} | {', '.join(f'{v:.4f}' for v in two[1])} | "
              f"{', '.join(f'{v:.4f}' for v in one[1])} | {diff:.1e} |", flush=True)
        held = held_line(home / f"{name}-2" / "train.log")
        if held:
            print(f"|  | {held} | | | |", flush=True)


if __name__ == "__main__":
    main()
