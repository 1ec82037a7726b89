"""The run folder before a run trains into it (engine/train/recipe.py calls these): whether it is this product's
run and free (no other process trains it), whether it may start over or resume, and the checkpoint a resumed run
continues from, its incomplete checkpoints removed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.config import ConfigError, RunConfig
from engine.jobs import rundir
from engine.jobs.reporter import RANKS, JobReporter
from engine.sentences import Sentence, said
from engine.train import nodes, world


def check_output_dir(config: RunConfig, overwrite: bool = False) -> None:
    """Refuse to write into a folder that is not a run this product wrote (with or without --overwrite), into a run
    that trains, and to start over a finished one unless told to (--overwrite)."""
    run = rundir.RunDir(Path(config.output_dir))
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError([f"output_dir {run.path} is a file, not a folder: choose another output_dir."])
    foreign = [p for p in run.path.iterdir() if p.name != RANKS] if run.path.is_dir() else []  # ranks/: the other
    if foreign and not run.written_by_engine():  # ranks' logs, which they may open before rank 0 gets here
        raise ConfigError([f"output_dir {run.path} holds files but no run of PEFT Workbench (no {rundir.STATUS} or "
                           f"{rundir.CONFIG} it wrote): choose a new or empty output_dir, since training would "
                           "replace or delete what is there (nothing was changed)."])
    status = run.read_status()
    training = status.get("state") not in rundir.FINAL_STATES and status.get("pid") not in (None, os.getpid())
    if training and rundir.process_alive(status):
        raise ConfigError([f"output_dir {run.path} holds a run that is still training (pid {status['pid']}): "
                           "stop it first (Stop on the page, or `kill -TERM` that pid) or choose another output_dir."])
    if config.train.resume:
        if (checkpoint := run.last_checkpoint()) is None:
            raise ConfigError([no_checkpoint_sentence(run)])
        if (problem := world.problem(checkpoint, config)) is not None:
            raise ConfigError([problem])
    elif run.events.exists() and not overwrite:
        raise ConfigError([holds_run_sentence(run, status.get("state", "not started"))])


def holds_run_sentence(run: rundir.RunDir, state: str) -> Sentence:
    """Why a config cannot start in a folder that holds a run (in `state`), and what to do: another output_dir or
    --overwrite, and --resume where a checkpoint is left to continue from. A completed run has nothing left to
    train (its resume would only save its weights again), so it is not offered --resume."""
    can_resume = state != "completed" and run.last_checkpoint() is not None
    resume = said("engine.output_dir.resume", path=str(run.path)) if can_resume else ""
    return said("engine.output_dir.holds_run", path=str(run.path), state=state, resume=resume)


def no_checkpoint_sentence(run: rundir.RunDir) -> str:
    """Why a run cannot be resumed, in one sentence that says what to do."""
    broken = run.incomplete_checkpoints()
    if broken:
        return (f"{run.path} has no complete checkpoint to resume from: {incomplete(broken)}; start it afresh "
                "with --overwrite.")
    return (f"{run.path} has no checkpoint to resume from (train.save_steps decides how often checkpoints are "
            "written): start it afresh with --overwrite.")


def incomplete(checkpoints: list[Path]) -> Sentence:
    """'checkpoint-20 is incomplete (...)', naming every checkpoint given."""
    names = ", ".join(p.name for p in checkpoints)
    return said("engine.log.incomplete_one" if len(checkpoints) == 1 else "engine.log.incomplete_many", names=names)


def resume_point(run: rundir.RunDir, reporter: JobReporter, config: RunConfig, rows: int, sampler: str) -> Path:
    """The newest complete checkpoint. Incomplete ones (a process killed while writing or rotating them) are
    removed first, so that the Trainer neither loads one nor counts one when it rotates checkpoints. Another number
    of processes than wrote it is said, or refused (engine/train/world.py: `rows`, `sampler` the Trainer's)."""
    checkpoint = run.last_checkpoint()
    if checkpoint is None:  # check_output_dir said so before anything was loaded; the folder changed since
        raise ConfigError([no_checkpoint_sentence(run)])
    broken = run.incomplete_checkpoints() if nodes.writes_checkpoints() else []  # rank 0 removes them (and each
    # node's local rank 0 those of its own folder); the others see none
    for folder in broken:
        shutil.rmtree(folder)
    reporter.info(said("engine.log.removed_resuming", incomplete=incomplete(broken), checkpoint=checkpoint.name)
                  if broken else said("engine.log.resuming", checkpoint=checkpoint.name))
    if (line := world.resumed(checkpoint, config, rows, sampler)) is not None:
        reporter.info(line)
    return checkpoint
