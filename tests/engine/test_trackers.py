"""train.report_to on a tiny real Llama: one LoRA run reporting to TensorBoard and trackio (local) at once, read
back with each tracker's own reader, holds every curve of the run's events.jsonl; a tracker whose package is not
installed stops a run before anything is loaded, with the pip command. DPO's rewards/* curves are checked on
test_preference.py's run (`assert_curves_reach_tensorboard`)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from engine.jobs.events import Metrics, Progress, read_events
from engine.jobs.kinds import TRAIN
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import RunDir
from engine.train.recipe import main as train_main
from tests.cli import MEMORISE, launch, write_config, write_rows

ENGINE_CURVES = ("tokens_per_s",)  # measured by the engine's callback, not logged by the Trainer


def run_curves(run: RunDir) -> dict[str, dict[int, float]]:
    """{curve: {step: value}} of the run's events.jsonl, the Trainer's names as the trackers write them
    (train/loss, eval/loss, train/rewards/margins)."""
    curves: dict[str, dict[int, float]] = {}
    for event in read_events(run.events):
        if isinstance(event, Metrics):
            for name, value in event.values.items():
                if name not in ENGINE_CURVES:
                    tag = "eval/loss" if name == "eval_loss" else f"train/{name}"
                    curves.setdefault(tag, {})[event.step] = value
    return curves


def tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} as TensorBoard's own reader loads RUN/tb/."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: {event.step: event.value for event in accumulator.Scalars(tag)}
            for tag in accumulator.Tags()["scalars"]}


def assert_curves_reach_tensorboard(run: RunDir) -> dict[str, dict[int, float]]:
    """Every curve of the run's events, step by step, in its TensorBoard log (float32 there); the curves."""
    curves, scalars = run_curves(run), tensorboard_scalars(run.tensorboard)
    assert curves and set(curves) <= set(scalars), (sorted(curves), sorted(scalars))
    for tag, points in curves.items():
        assert scalars[tag] == pytest.approx(points, rel=1e-6), tag
    return curves


@pytest.fixture(scope="module")
def tracked_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """One 4-step LoRA run in WORKSPACE/runs/tracked, with an eval every 2 steps, reporting to both trackers."""
    home = tmp_path_factory.mktemp("workspace")
    data = write_rows(home / "memorise.json", MEMORISE * 2)
    config = write_config(home / "run.yaml", tiny_model, data, home / "runs" / "tracked",
                          train={"max_steps": 4, "eval_steps": 2, "report_to": ["tensorboard", "trackio"]},
                          data_options={"val_size": 0.25})
    result = launch("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    return RunDir(home / "runs" / "tracked")


def test_the_tensorboard_log_holds_every_curve_of_the_run(tracked_run: RunDir) -> None:
    curves = assert_curves_reach_tensorboard(tracked_run)
    assert sorted(curves["train/loss"]) == [1, 2, 3, 4] and sorted(curves["eval/loss"]) == [2, 4]


def test_trackio_keeps_the_run_locally_with_every_curve(tracked_run: RunDir, monkeypatch) -> None:
    from trackio import sqlite_storage

    # TRACKIO_DIR is read once, when trackio is imported: this process reads the workspace's database
    monkeypatch.setattr(sqlite_storage, "TRACKIO_DIR", tracked_run.path.parents[1] / "trackio")
    storage = sqlite_storage.SQLiteStorage
    assert storage.get_runs("peft-workbench") == ["tracked"]
    logged: dict[str, dict[int, float]] = {}
    for row in storage.get_logs("peft-workbench", "tracked"):
        for tag, value in row.items():
            if isinstance(value, float) and "train/global_step" in row:
                logged.setdefault(tag, {})[row["train/global_step"]] = value
    for tag, points in run_curves(tracked_run).items():
        assert logged.get(tag) == pytest.approx(points), tag


@pytest.fixture
def missing_tracker() -> str:
    """A tracker whose package this environment does not have (none of them is a requirement)."""
    return next(name for name in ("swanlab", "wandb", "mlflow") if find_spec(name) is None)


def test_a_tracker_not_installed_is_refused_when_the_config_is_read(missing_tracker, tiny_model, tmp_path, capsys):
    data = write_rows(tmp_path / "memorise.json", MEMORISE)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run",
                          train={"report_to": ["tensorboard", missing_tracker]})
    assert train_main([str(config)]) == 2
    assert (f"train.report_to names {missing_tracker}, which is not installed: pip install {missing_tracker}, or "
            "remove it from train.report_to.") in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_folder_naming_a_tracker_not_installed_fails_before_loading(missing_tracker, tiny_model, tmp_path):
    """A run the page queued (its config.yaml read back without the form's checks) stops before its data."""
    data = write_rows(tmp_path / "memorise.json", MEMORISE)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run",
                          train={"report_to": [missing_tracker]})
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config.write_text(yaml.safe_dump(yaml.safe_load(config.read_text())), encoding="utf-8")
    assert run_job(TRAIN, run.path) == 1
    status = run.read_status()
    assert status["state"] == "failed"
    assert status["error"] == (f"{run.config}: train.report_to names {missing_tracker}, which is not installed: "
                               f"pip install {missing_tracker}, or remove it from train.report_to.")
    assert not any(isinstance(event, Progress) for event in read_events(run.events))
    assert "dataset memorise.json" not in run.train_log.read_text(encoding="utf-8")
