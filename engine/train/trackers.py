"""The run's trackers (train.report_to, engine/config_trackers.py) as the Trainer's own integrations.

The engine writes no logger of its own: TrainingArguments.report_to names the integrations and the Trainer sends
them everything it logs (loss, learning rate, grad norm, eval loss, and an objective's curves such as DPO's
rewards/*), under its own names (train/loss, eval/loss, train/rewards/margins). What the engine adds is where
each one writes, and that it stays on this machine unless the user says otherwise:

- tensorboard: RUN/tb/ (`tensorboard --logdir WORKSPACE/runs` shows every run of a workspace);
- wandb: offline (WANDB_MODE=offline, files under RUN/wandb/; `wandb sync` uploads them later);
- trackio: its local database in WORKSPACE/trackio (`trackio show` opens it), never a Space;
- mlflow: a file store in WORKSPACE/mlruns (`mlflow ui --backend-store-uri WORKSPACE/mlruns`);
- swanlab: offline, files in WORKSPACE/swanlog.

An environment variable the user set (WANDB_MODE, TRACKIO_DIR, MLFLOW_TRACKING_URI, SWANLAB_MODE, ...) wins over
these defaults. WORKSPACE is the folder that holds runs/ (a run outside one: the folder that holds the run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config import ConfigError, RunConfig
from engine.config_trackers import integrations, tracker_problems
from engine.jobs import rundir
from engine.sentences import said

PROJECT = "peft-workbench"  # trackio's project (TrainingArguments.project), the run named after its folder


def check(config: RunConfig, run: rundir.RunDir) -> None:
    """Before anything is loaded: ConfigError naming each tracker that is not installed, with its pip command
    (a config read back from a run folder has not been through RunConfig.problems())."""
    issues = tracker_problems(config.train.report_to)
    if issues:
        raise ConfigError(issues, str(run.config))


def workspace(run: rundir.RunDir) -> Path:
    """The folder holding runs/ (WORKSPACE/runs/NAME), else the folder holding the run."""
    parent = run.path.parent
    return parent.parent if parent.name == "runs" else parent


def environment(report_to: list[str], run: rundir.RunDir) -> dict[str, str]:
    """The environment defaults that keep each chosen tracker local (see the module docstring)."""
    names, home = set(report_to), workspace(run)
    env: dict[str, str] = {}
    if "wandb" in names:
        env |= {"WANDB_MODE": "offline", "WANDB_DIR": str(run.path)}
    if "trackio" in names:
        env["TRACKIO_DIR"] = str(home / "trackio")
    if "mlflow" in names:
        env["MLFLOW_TRACKING_URI"] = (home / "mlruns").as_uri()
    if "swanlab" in names:  # SWANLAB_LOGDIR is the current name, SWANLAB_LOG_DIR that of releases before it
        env |= {"SWANLAB_MODE": "offline", "SWANLAB_LOGDIR": str(home / "swanlog"),
                "SWANLAB_LOG_DIR": str(home / "swanlog")}
    return env


def prepare(config: RunConfig, run: rundir.RunDir) -> list[str]:
    """Set the environment defaults (those the user did not set) before the Trainer imports its integrations;
    one log line per chosen tracker saying where it writes."""
    for key, value in environment(config.train.report_to, run).items():
        os.environ.setdefault(key, value)
    places = {"tensorboard": str(run.tensorboard), "wandb": f"WANDB_MODE={os.environ.get('WANDB_MODE')}",
              "trackio": os.environ.get("TRACKIO_DIR", ""), "mlflow": os.environ.get("MLFLOW_TRACKING_URI", ""),
              "swanlab": f"SWANLAB_MODE={os.environ.get('SWANLAB_MODE')}"}
    return [said("engine.log.report_to", name=name, place=places[name])
            for name in integrations(config.train.report_to)]


def arguments(config: RunConfig, run: rundir.RunDir) -> dict[str, Any]:
    """The TrainingArguments that name the trackers and the run."""
    return {"report_to": integrations(config.train.report_to) or "none", "run_name": run.name, "project": PROJECT}


def point_tensorboard(trainer: Any, run: rundir.RunDir) -> None:
    """The Trainer's TensorBoardCallback writes RUN/tb/ (it would write under output_dir, the checkpoints, or where
    TENSORBOARD_LOGGING_DIR says: an environment variable shared by every run of a process)."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(run.tensorboard)
