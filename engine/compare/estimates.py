"""A comparison's estimate.json: each method's memory estimate before Start (engine.estimate.methods, which
computes it from the base model's config.json alone), written by the page in the web process before Start and by
`launch.py compare` before the first method trains, and read by the table (its "estimated peak" beside the measured
peak, so that the estimate's error per method is visible).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config_compare import CompareConfig
from engine.jobs.rundir import read_json, write_json_atomic
from engine.model import config_json

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
