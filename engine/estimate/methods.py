"""Each method's memory estimate of a comparison (engine.config_compare.CompareConfig): engine.estimate.memory on the
run config each method trains with (engine.config_compare.run_config), judged against the free memory. Here, below
engine.compare, so that `launch.py estimate` (engine/cli/estimate.py) prints it for a comparison's config as
`launch.py compare` and the Compare tab do (engine/compare/estimates.py re-exports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import ConfigError
from engine.config_compare import CompareConfig, run_config
from engine.estimate import memory, room
from engine.sentences import Sentence, said

VERDICTS = {"fits": "engine.log.verdict.fits", "tight": "engine.log.verdict.tight",
            "will not fit": "engine.log.verdict.no_fit"}  # memory.verdict's words -> their keys in the run log


def machine() -> tuple[str, int]:
    """(device, free bytes) the estimate is judged against: the first GPU's free memory where nvidia-smi answers,
    else the RAM this process may still take."""
    gpu = room.gpu_free()
    return ("gpu", gpu) if gpu is not None else ("cpu", room.memory_room()[0])


def method_estimates(config: CompareConfig, model_config: dict[str, Any] | None, device: str,
                     free: int, lengths: list[int] | None = None) -> dict[str, Any]:
    """{"device", "free_mb", "methods": {method: {"total_mb", "verdict", "largest"} or None}}: None for a method
    whose estimate config.json cannot give (no config.json at hand, sizes missing, a preset that makes no run).
    `lengths`: the dataset's measured token lengths (the comparison's engine process measures them), for the
    largest batch its rows make instead of rows of cutoff_len tokens ("lengths" then says how many rows, the
    longest)."""
    methods: dict[str, Any] = {}
    for method in config.methods:
        step = None
        if model_config is not None:
            try:
                step = memory.estimate(run_config(config, method, Path(config.output_dir or ".")), model_config,
                                       device, lengths)
            except ConfigError:
                step = None  # the preset's problem is said by the config check that Start runs
        methods[method] = None if step is None else {
            "total_mb": step.total / memory.MIB, "verdict": memory.verdict(step.total, free),
            "largest": step.largest()[0].removeprefix("the ")}
    found: dict[str, Any] = {"device": device, "free_mb": free / memory.MIB, "methods": methods}
    if lengths:
        found["lengths"] = {"rows": len(lengths), "longest": max(lengths), "cutoff_len": config.train.cutoff_len}
    return found


def lines(estimates: dict[str, Any]) -> list[Sentence]:
    """The estimate for a terminal (and the run log, keyed): the machine's free memory, then one line per method."""
    device = said("engine.log.estimate_gpu") if estimates["device"] == "gpu" else said("engine.log.estimate_cpu")
    rows = estimates.get("lengths")
    basis = said("engine.log.estimate_basis", rows=rows["rows"], longest=rows["longest"]) if rows else ""
    told = [said("engine.log.estimate_head", device=device, free=f"{estimates['free_mb'] / 1024:.2f}", basis=basis)]
    width = max(len(method) for method in estimates["methods"])
    for method, found in estimates["methods"].items():
        text = said("engine.log.estimate_none") if found is None else said(
            "engine.log.estimate_one", total=f"{found['total_mb'] / 1024:.2f}", verdict=_keyed(found["verdict"],
                                                                                              VERDICTS),
            largest=_keyed("the " + found["largest"], memory.PART_KEYS))
        told.append(said("engine.log.estimate_method", method=method.ljust(width), text=text))
    return told


def _keyed(word: str, keys: dict[str, str]) -> str:
    """`word` as the keyed sentence of its short name where `keys` knows it (else as it is: an older file's)."""
    return said(keys[word]) if word in keys else word.removeprefix("the ")
