"""`train.report_to`: the experiment trackers a run reports to, as a config field.

Plain Python (pydantic, importlib): engine.config builds TrainConfig on `TrackerOptions`, so the key sits under
`train:` as TrainingArguments names it. The names are the Trainer's own integrations (transformers'
integration_utils); the engine passes them on unchanged (engine/train/trackers.py adds the run folder's
places and the offline modes). A run keeps a TensorBoard log by default (RUN/tb/); `[none]` reports nowhere.

Each tracker is an optional package: one that is not installed is refused with the pip command when the config
is checked (the form, `launch.py train`) and again by the engine before it loads anything, never at the end.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

Tracker = Literal["none", "tensorboard", "trackio", "wandb", "swanlab", "mlflow"]
TRACKERS: tuple[str, ...] = get_args(Tracker)
DEFAULT_TRACKERS = ("tensorboard",)
# The package each tracker's integration imports (what `pip install` installs, and what find_spec looks for).
PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "swanlab": "swanlab",
            "mlflow": "mlflow"}


class TrackerOptions(BaseModel):
    """train.report_to, inherited by engine.config.TrainConfig."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    report_to: list[Tracker] = Field(default_factory=lambda: list(DEFAULT_TRACKERS), description=(
        "Experiment trackers the run reports its curves to (the Trainer's integrations): tensorboard writes "
        "RUN/tb/ (the default); trackio, wandb, swanlab and mlflow log locally or offline unless you point them "
        "at a server; none reports nowhere."))

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        """`report_to: wandb` (one name, as TrainingArguments also takes it) reads as `[wandb]`."""
        return [value] if isinstance(value, str) else value

    @field_validator("report_to")
    @classmethod
    def _none_alone(cls, value: list[str]) -> list[str]:
        if "none" in value and len(set(value)) > 1:
            raise ValueError("none cannot be listed with a tracker: list the trackers, or none alone")
        return list(dict.fromkeys(value)) or ["none"]


def integrations(report_to: list[str]) -> list[str]:
    """The names TrainingArguments.report_to takes: the trackers, none left out."""
    return [name for name in report_to if name != "none"]


def missing(report_to: list[str]) -> list[str]:
    """The trackers of `report_to` whose package is not installed."""
    return [name for name in integrations(report_to) if find_spec(PACKAGES[name]) is None]


def tracker_problems(report_to: list[str]) -> list[str]:
    """One sentence per tracker that is not installed, with the command that installs it."""
    return [f"train.report_to names {name}, which is not installed: pip install {PACKAGES[name]}, or remove it "
            "from train.report_to." for name in missing(report_to)]
