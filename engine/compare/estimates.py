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

from engine.config_compare import CompareConfig
from engine.estimate.methods import lines, machine, method_estimates
from engine.jobs.rundir import read_json, write_json_atomic
from engine.model import config_json

__all__ = ["ESTIMATE_JSON", "lines", "machine", "method_estimates", "read_estimates", "read_model_config",
           "write_estimates"]  # the estimate itself is engine.estimate.methods' (`launch.py estimate` prints it too)

ESTIMATE_JSON = "estimate.json"


def read_model_config(config: CompareConfig) -> dict[str, Any] | None:
    """The base model's config.json for the command line (a local folder or the hub cache; None where it is not
    at hand). The page reads it through its own path boundary (webui.forms.models) instead."""
    return config_json.model_config_json(config.model.name_or_path, config.model.revision)


def write_estimates(folder: Path, estimates: dict[str, Any]) -> None:
    write_json_atomic(folder / ESTIMATE_JSON, estimates)


def read_estimates(folder: Path) -> dict[str, Any]:
    """The comparison's estimate.json; {} where there is none (a comparison started before it was written);
    ValueError naming the file where it is damaged."""
    found = read_json(folder / ESTIMATE_JSON)
    if not isinstance(found, dict) or not isinstance(found.get("methods", {}), dict):
        raise ValueError(f"{ESTIMATE_JSON} cannot be read: it is not the estimate this product writes.")
    return found
