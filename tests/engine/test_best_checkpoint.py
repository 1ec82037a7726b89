"""Best checkpoint and early stopping (train.metric_for_best, train.early_stopping_patience: engine/config_best.py)
on the tiny Llama, trained in this process through the job lifecycle (no process started): a run with a validation
split evaluates every step, keeps the checkpoint with the lowest eval_loss (the adapter it saves holds that step's
weights, and metrics.json names the step) and, with a patience, stops once that many evaluations in a row brought
nothing better."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from engine.jobs.events import Metrics, final_status, read_events
from engine.jobs.kinds import TRAIN
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, engine_process_state_kept, write_config, write_rows

ROWS = MEMORISE + [{"instruction": f"What is {n} plus {n}?", "output": f"{n} plus {n} is {2 * n}."} for n in range(4)]
MAX_STEPS = 12


def train_here(config_path: Path) -> RunDir:
    """`launch.py train CONFIG` without the process: the run folder written, then trained through run_job."""
    from engine.config import load_config

    config = load_config(config_path)
    run = RunDir(Path(config.output_dir))
    run.path.mkdir(parents=True, exist_ok=True)
    run.config.write_text(config.to_yaml(), encoding="utf-8")
    with engine_process_state_kept():
        assert run_job(TRAIN, run.path) == 0, run.log.read_text(encoding="utf-8")[-3000:]
    return run


@pytest.fixture(scope="module")
def stalled_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A run whose learning rate is far too high for its data: the held-out loss gets better at first, then worse."""
    folder = tmp_path_factory.mktemp("best")
    data = write_rows(folder / "data.json", ROWS)
    config = write_config(folder / "run.yaml", tiny_model, data, folder / "run", data_options={"val_size": 0.25},
                          train={"max_steps": MAX_STEPS, "eval_steps": 1, "learning_rate": 0.05,
                                 "early_stopping_patience": 2, "report_to": "none"})
    return train_here(config)


def test_early_stopping_ends_a_stalled_run_and_the_adapter_kept_is_the_best_checkpoint(stalled_run: RunDir):
    run = stalled_run
    assert final_status(read_events(run.events)).state == "completed"
    evals = {e.step: e.eval_loss for e in read_events(run.events) if isinstance(e, Metrics) and e.eval_loss is not None}
    best_step = min(evals, key=lambda step: (evals[step], step))
    last = max(evals)
    metrics = run.read_metrics()
    best = metrics["best"]
    assert best["metric"] == "eval_loss" and best["step"] == best_step and best["value"] == pytest.approx(
        evals[best_step])
    # it stopped at the second evaluation in a row without a better loss, before its last step
    assert best["stopped_early"] and last == best_step + 2 < MAX_STEPS and metrics["steps"] == last
    assert metrics["eval_loss"] == pytest.approx(evals[best_step])  # the figure of the weights it saved
    kept = load_file(run.checkpoints / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    saved = load_file(run.adapter / "adapter_model.safetensors")
    final = load_file(run.checkpoints / f"checkpoint-{last}" / "adapter_model.safetensors")
    assert set(saved) == set(kept)
    assert all((saved[name] == kept[name]).all() for name in saved)
    assert any((saved[name] != final[name]).any() for name in saved)  # not the last step's weights
    # save_total_limit (2) keeps the best checkpoint beside the newest
    assert sorted(path.name for path in run.checkpoints.glob("checkpoint-*")) == sorted(
        {f"checkpoint-{best_step}", f"checkpoint-{last}"})


def test_patience_without_a_validation_split_is_refused_before_training(tiny_model: Path, tmp_path: Path):
    from engine.config import ConfigError, load_config

    data = write_rows(tmp_path / "data.json", ROWS)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run",
                          train={"early_stopping_patience": 3})
    with pytest.raises(ConfigError, match="early_stopping_patience needs a validation set"):
        load_config(config)
