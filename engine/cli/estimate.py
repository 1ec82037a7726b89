"""`python launch.py estimate CONFIG.yaml`: the memory one training step of a config needs, by part, from the model's
config.json alone (engine/estimate/memory.py, as the Train tab shows it), the verdict against the memory free here,
and where it does not fit with room to spare, a configuration that does, as a config diff (engine/estimate/advice.py).
Plain Python: no torch is imported, nothing is loaded; with --measure-data the dataset's rows are counted with the
model's tokenizer (engine/estimate/lengths.py), and the estimate takes the largest batch they make instead of rows of
cutoff_len tokens. A comparison's config (`methods:`, as `launch.py compare` reads it) gets each method's estimate, the
lines `launch.py compare` prints before its first method trains (engine/estimate/methods.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from engine.config import ConfigError, load_config
from engine.estimate import advice, memory, room
from engine.model.config_json import ModelFileError, model_config_json


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python launch.py estimate", description="Estimate the peak memory of one training step of a config, "
        "by part, from the model's config.json alone, with a verdict against the free memory and, where it does not "
        "fit, a configuration that does (a config diff).")
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="estimate for the CPU (RAM) or a GPU (VRAM); default: a GPU where nvidia-smi reports one")
    parser.add_argument("--free-gib", type=float, default=None, help="memory free, in GiB (default: measured here)")
    parser.add_argument("--measure-data", action="store_true", help=(
        "count the dataset's token lengths with the model's tokenizer (as the Train tab's inspection does) and take "
        "the largest batch they make, instead of rows of cutoff_len tokens"))
    args = parser.parse_args(argv)
    if is_compare_config(args.config):
        return compare_estimate(args)
    try:
        config = load_config(args.config, writes=False)
        found = model_config_json(config.model.name_or_path, config.model.revision)
    except (ConfigError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    device, free = judged_against(args)
    lengths = None
    if args.measure_data and found is not None:
        from engine.estimate.lengths import measured_lengths

        lengths = measured_lengths(config, print)
    step = memory.estimate(config, found, device, lengths) if found is not None else None
    if step is None:
        print(f"error: no estimate for {config.model.name_or_path}: its config.json is not at hand or lacks the "
              "sizes (hidden_size, num_hidden_layers, vocab_size) of a decoder this estimate knows.", file=sys.stderr)
        return 2
    if lengths:
        print(f"rows: the largest batch of the data's {len(lengths)} measured rows "
              f"(the longest {step.longest} tokens, cut at cutoff_len)")
    print(f"{device}: one step needs about {step.summary()}")
    print(f"free: {free / memory.GIB:.2f} GiB: {memory.verdict(step.total, free)}")
    if memory.verdict(step.total, free) != "fits":
        found_advice = advice.suggest(config, lambda changed: memory.estimate(changed, found, device, lengths), free)
        if found_advice is not None:
            print(f"a configuration that fits:\n{found_advice.diff()}")
    return 0


def judged_against(args: argparse.Namespace) -> tuple[str, int]:
    """(device, free bytes) an estimate is judged against: --device, else a GPU where nvidia-smi reports one, else the
    CPU; --free-gib, else the GPU's free memory (nvidia-smi is asked only where the device is not the CPU), else the
    RAM this process may still take."""
    gpu = room.gpu_free() if args.device != "cpu" else None
    device = args.device or ("gpu" if gpu is not None else "cpu")
    if args.free_gib is not None:
        return device, int(args.free_gib * memory.GIB)
    return device, gpu if device == "gpu" and gpu is not None else room.memory_room()[0]


def is_compare_config(path: str) -> bool:
    """Whether the YAML at `path` is a comparison's (its `methods`); False for anything else, which load_config
    then reads or refuses with its own sentence."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(raw, dict) and "methods" in raw


def compare_estimate(args: argparse.Namespace) -> int:
    """Each method's estimate of a comparison's config, judged against the memory free here (or --device and
    --free-gib); `--measure-data` is not applied (the comparison's own process measures its rows)."""
    from engine.config_compare import load_compare_config
    from engine.estimate import methods as estimates
    from engine.model.config_json import model_config_json

    try:
        config = load_compare_config(args.config)
        found = model_config_json(config.model.name_or_path, config.model.revision)
    except (ConfigError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in estimates.lines(estimates.method_estimates(config, found, *judged_against(args))):
        print(line)
    return 0
