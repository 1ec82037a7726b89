"""Each method's memory estimate before Start (issue 26 item 3, per method): engine.estimate.memory.estimate on the
run config the method will train with (engine.config_compare.run_config), from the base model's config.json alone,
with a verdict against this machine's free memory (a GPU's where nvidia-smi reports one, else RAM under the
process's limits: engine.estimate.room).

Plain Python, no torch: the page computes it in the web process before Start, `launch.py compare` prints it before
the first method trains, and both write it to the comparison's estimate.json, which the table reads (its "estimated
peak" beside the measured peak, so that the estimate's error per method is visible).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import ConfigError
from engine.config_compare import CompareConfig, run_config
from engine.estimate import memory, room
from engine.jobs.rundir import read_json, write_json_atomic
from engine.model import config_json
from engine.sentences import Sentence, said

VERDICTS = {"fits": "engine.log.verdict.fits", "tight": "engine.log.verdict.tight",
            "will not fit": "engine.log.verdict.no_fit"}  # memory.verdict's words -> their keys in the run log

ESTIMATE_JSON = "estimate.json"


def machine() -> tuple[str, int]:
    """(device, free bytes) the estimate is judged against: the first GPU's free memory where nvidia-smi answers,
    else the RAM this process may still take."""
    gpu = room.gpu_free()
    return ("gpu", gpu) if gpu is not None else ("cpu", room.memory_room()[0])


def read_model_config(config: CompareConfig) -> dict[str, Any] | None:
    """The base model's config.json for the command line (a local folder or the hub cache; None where it is not
    at hand). The page reads it through its own path boundary (webui.forms.models) instead."""
    return config_json.model_config_json(config.model.name_or_path, config.model.revision)


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


def write_estimates(folder: Path, estimates: dict[str, Any]) -> None:
    write_json_atomic(folder / ESTIMATE_JSON, estimates)


def read_estimates(folder: Path) -> dict[str, Any]:
    """The comparison's estimate.json; {} where there is none (a comparison started before it was written);
    ValueError naming the file where it is damaged."""
    found = read_json(folder / ESTIMATE_JSON)
    if not isinstance(found, dict) or not isinstance(found.get("methods", {}), dict):
        raise ValueError(f"{ESTIMATE_JSON} cannot be read: it is not the estimate this product writes.")
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
