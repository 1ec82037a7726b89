"""Evaluation jobs (WORKSPACE/evals/NAME/): base against finished runs on a test set, as a job the scheduler starts
(`python -m engine run FOLDER --kind eval`, body engine/eval/job.py). Like an export, an evaluation is found again
from its folder after a reload or a restart of launch.py: its state, log and results are all on disk.

The kind's lane is the training device's (engine.jobs.kinds.EVAL): an evaluation loads the base model and generates
with it, so it waits for a training run on that device to end rather than share its memory, and a run queued after
it waits for it. Exports keep their own lane because merging runs on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.config import DataConfig
from engine.config_eval import BASE, EvalConfig
from engine.config_read import sentence as sentence_of
from engine.config_stage import PREFERENCE_STAGES
from engine.errors import UserError
from engine.jobs.kinds import EVAL
from engine.jobs.rundir import EvalDir, RunDir, read_json
from engine.sampling import SamplingConfig
from engine.sentences import said
from webui.jobs.boundary import Boundary
from webui.jobs.monitor import JobSnapshot
from webui.jobs.paths import PathError, safe_name
from webui.jobs.scheduler import QUEUED, Scheduler
from webui.jobs.submit import JobManager

VALIDATION = "validation:"  # a test-set choice "validation:RUN": that run's own held-out rows


class EvalChoiceError(UserError, ValueError):
    """What the Evaluate form was given cannot be evaluated; the message is one sentence for the page."""


def validation_choice(run: str) -> str:
    return f"{VALIDATION}{run}"


def has_validation(run: RunDir) -> bool:
    """Whether a run held rows out for validation (its data.val_size) that an evaluation can read, so they can be
    its test set: an SFT or pretraining run's (a preference run's held-out rows are pairs, engine.eval.testset)."""
    try:
        config = run.read_config()
    except (OSError, ValueError):  # a damaged config: not offered
        return False
    return config.data.val_size > 0 and config.train.stage not in PREFERENCE_STAGES


def no_validation(run: RunDir) -> str:
    """Why a run's validation split cannot be a test set (has_validation is false), in one sentence."""
    try:
        stage = run.read_config().train.stage
    except (OSError, ValueError):
        stage = None
    if stage in PREFERENCE_STAGES:
        return (f"Run {run.name} trained on preference pairs ({stage}), so its held-out rows are pairs, which an "
                "evaluation does not read: choose a dataset file of SFT rows as the test set.")
    return (f"Run {run.name} held no rows out for validation (data.val_size is 0): choose a dataset file as the "
            "test set.")


class EvalManager:
    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.jobs = JobManager(scheduler)  # the one writer of config.yaml and the queued status
        self.evals_dir = scheduler.folder(EVAL)

    @property
    def boundary(self) -> Boundary:
        return self.scheduler.boundary

    def job(self, name: str) -> EvalDir:
        """The folder of evaluation `name`; PathError for a name that is not one plain name, or a symlink."""
        path = self.evals_dir / safe_name(name)
        if path.is_symlink():
            raise PathError(f"evals/{name} is a symbolic link, not an evaluation folder: it is not followed.")
        return EvalDir(path)

    def config(self, models: list[str], test_set: str, run_dir: Callable[[str], RunDir], max_rows: int | None,
               max_new_tokens: int, general: bool = True, columns: dict[str, str] | None = None) -> EvalConfig:
        """The EvalConfig of the form's choices: `models` are "base" and run names, `test_set` a dataset file (as the
        Train tab lists them, read with the column map `columns`) or "validation:RUN" (read as its run read it).
        EvalChoiceError, PathError or RunError (one sentence) otherwise."""
        if not models:
            raise EvalChoiceError(said("engine.eval.choose_model"))
        if not test_set:
            raise EvalChoiceError(said("engine.eval.choose_test_set"))
        folders = {name: run_dir(name) for name in models if name != BASE}
        update: dict[str, Any] = {"models": [BASE if name == BASE else str(folders[name].path) for name in models]}
        if test_set.startswith(VALIDATION):
            run = run_dir(test_set.removeprefix(VALIDATION))
            if not has_validation(run):
                raise EvalChoiceError(no_validation(run))
            update["validation_of"] = str(run.path)
        else:
            try:
                update["data"] = DataConfig(path=self.boundary.dataset(test_set), columns=columns or {})
            except ValidationError as error:  # a map an API caller sent: the key as the YAML spells it
                raise EvalChoiceError(sentence_of(error.errors()[0], ("data",))) from None
        if not folders:  # the base alone: the base model a run of the test set trained on
            if "validation_of" not in update:
                raise EvalChoiceError(said("engine.eval.choose_run"))
            update["base"] = self.boundary.run(run).model.name_or_path
        try:
            sampling = SamplingConfig(max_new_tokens=int(max_new_tokens))
        except ValidationError as error:  # the key as the YAML spells it: 'sampling.max_new_tokens'
            raise EvalChoiceError(sentence_of(error.errors()[0], ("sampling",))) from None
        try:
            config = EvalConfig(**update, max_rows=int(max_rows) if max_rows else None, sampling=sampling,
                                general=bool(general))
        except ValidationError as error:  # a number out of range: the schema's own sentence
            raise EvalChoiceError(sentence_of(error.errors()[0])) from None
        issues = config.problems()
        if issues:
            raise EvalChoiceError(issues[0])
        return config

    def start(self, config: EvalConfig) -> EvalDir:
        """Queue an evaluation under a new name (evals/eval-YYYYmmdd-HHMMSS); it starts when the device lane is
        free (the scheduler checks its paths against the boundary first)."""
        with self.scheduler.lock:
            stamp, number = time.strftime("eval-%Y%m%d-%H%M%S"), 1
            name = stamp
            while (self.evals_dir / name).exists():
                number += 1
                name = f"{stamp}-{number}"
            job = self.job(name)
            config = config.model_copy(update={"output_dir": str(job.path)})
            self.jobs.submit(EVAL, name, config)
            return job

    def latest(self) -> EvalDir | None:
        """The newest evaluation (by its status), or None."""
        jobs = []
        for name, status in self.scheduler.statuses(EVAL).items():
            if status.get("damaged"):  # a symlink, or a folder the engine did not write
                continue
            job = self.job(name)
            try:
                jobs.append((job.status.stat().st_mtime, name, job))
            except OSError:  # deleted since the snapshot
                continue
        return max(jobs, key=lambda found: found[:2])[2] if jobs else None

    def follow(self, job: EvalDir) -> JobSnapshot:
        return self.scheduler.monitor(job).refresh()

    def stop(self, job: EvalDir) -> bool:
        """Stop an evaluation: a queued one leaves the queue, a running one ends between two batches, writing no
        results. False when it is neither."""
        with self.scheduler.lock:
            if job.read_status().get("state") == QUEUED:
                job.write_status("stopped", pid=None, error=None, note="stopped before it started")
                self.scheduler.scan()
                return True
            return self.scheduler.stop(job)

    @staticmethod
    def metrics(job: EvalDir) -> dict[str, Any] | None:
        """metrics.json of a completed evaluation, None before (it is written last, at completion)."""
        return read_json(job.metrics) if job.metrics.is_file() and not job.metrics.is_symlink() else None

    @staticmethod
    def csv_path(job: EvalDir) -> Path:
        """Where the table's CSV is offered from: beside the results, named after the job."""
        return job.path / f"{job.name}.csv"
