"""What a comparison still has to train: per method, its run folder and what to do with it.

Plain Python: the command line (engine/compare/cli.py) and the page (webui/jobs/compares.py) plan the same way.
A method whose run completed with the config it would get now is done and never trained again; one stopped or
failed with a complete checkpoint of that config resumes from it; anything else (no run yet, a run of other
settings, one without a checkpoint) starts afresh. A folder that is not a run of this product, or a run that is
training now, is refused with a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compare.table import CompareDir
from engine.config import ConfigError, RunConfig
from engine.config_compare import CompareConfig, eval_config, run_config
from engine.config_eval import BASE, EvalConfig
from engine.jobs.rundir import FINAL_STATES, EvalDir, RunDir

DONE, RESUME, START = "done", "resume", "start"


@dataclass(frozen=True)
class Step:
    method: str
    run: RunDir
    config: RunConfig  # what the run trains with (train.resume set where it resumes)
    action: str  # DONE, RESUME or START


def _settings(raw: dict[str, Any]) -> dict[str, Any]:
    """A run config's settings that decide what it trains (not its versions, nor whether it resumed)."""
    config = RunConfig.model_validate(raw).model_dump(mode="json", exclude={"versions"})
    config["train"].pop("resume", None)
    config["model"].pop("adapter", None)
    return config


def same_settings(run: RunDir, config: RunConfig) -> bool:
    try:
        return _settings(run.read_raw_config()) == _settings(config.model_dump(mode="json"))
    except ValueError:  # a damaged or older config.yaml: not the same run
        return False


def plan(compare: CompareDir, config: CompareConfig) -> list[Step]:
    """One step per method, in the comparison's order; ConfigError (one sentence per problem) where a method's
    folder cannot be used."""
    steps, issues = [], []
    for method in config.methods:
        run = compare.run(config, method)
        wanted = run_config(config, method, run.path)
        status = run.read_status() if run.path.is_dir() else {}
        if run.path.is_dir() and any(run.path.iterdir()) and not run.written_by_engine():
            issues.append(f"{run.path} holds files but no run of PEFT Workbench: move them, or give the "
                          "comparison another name.")
            continue
        if status.get("state") not in (*FINAL_STATES, None) and run.process_alive():
            issues.append(f"{run.path} is training now (pid {status.get('pid')}): stop it first.")
            continue
        same = same_settings(run, wanted) if run.config.is_file() else False
        if same and status.get("state") == "completed" and run.metrics.is_file():
            steps.append(Step(method, run, wanted, DONE))
        elif same and run.last_checkpoint() is not None:
            resumed = wanted.model_copy(update={"train": wanted.train.model_copy(update={"resume": True})})
            steps.append(Step(method, run, resumed, RESUME))
        else:
            steps.append(Step(method, run, wanted, START))
    if issues:
        raise ConfigError(issues, str(compare.path))
    return steps


def prepare(step: Step) -> None:
    """Make the run folder ready for its engine process: outputs of an earlier attempt removed where it starts
    afresh, config.yaml written (the process reads it)."""
    if step.action == START:
        step.run.clear_outputs()
        step.run.status.unlink(missing_ok=True)  # an earlier run of other settings: its state is not this one's
    step.run.path.mkdir(parents=True, exist_ok=True)
    step.run.config.write_text(step.config.to_yaml(), encoding="utf-8")


def evaluation_due(compare: CompareDir, config: CompareConfig, method: str, run: RunDir) -> EvalConfig | None:
    """The evaluation `method` (or BASE: the base model's, once) still needs after `run` completed: None where
    config.evaluate is off, or where it completed with these settings (a method trained again has had its
    evaluation's metrics removed). The base's is on the held-out rows of whichever run completed first: the same
    rows for every method, so its run folder does not count as a setting."""
    if not config.evaluate:
        return None
    job = compare.evaluation(method)
    wanted = eval_config(config, run.path, job.path, base=method == BASE)
    try:
        done = job.read_config() if job.metrics.is_file() else None
    except ValueError:  # a damaged or older config.yaml: evaluated again
        done = None
    if done is not None and method == BASE:
        done = done.model_copy(update={"validation_of": wanted.validation_of})
    return None if done == wanted else wanted


def prepare_evaluation(job: EvalDir, config: EvalConfig) -> None:
    """The evaluation's folder ready for its engine process: an earlier attempt's outputs removed, config.yaml
    written."""
    job.path.mkdir(parents=True, exist_ok=True)
    job.clear_outputs()
    job.status.unlink(missing_ok=True)
    job.config.write_text(config.to_yaml(), encoding="utf-8")


def write_compare_yaml(compare: CompareDir, config: CompareConfig) -> None:
    """The comparison's config.yaml (its output_dir: its folder), replaced whole."""
    compare.path.mkdir(parents=True, exist_ok=True)
    partial = compare.path / f".{compare.config.name}.partial"
    partial.write_text(config.model_copy(update={"output_dir": str(compare.path)}).to_yaml(), encoding="utf-8")
    partial.replace(compare.config)


def compare_folder(config: CompareConfig, config_path: Path | None, workspace: str | Path) -> Path:
    """config.output_dir, else WORKSPACE/compares/NAME (NAME: the config file's stem)."""
    if config.output_dir:
        return Path(config.output_dir)
    name = config_path.stem if config_path is not None else "compare"
    return Path(workspace).expanduser().resolve() / "compares" / name
