"""Job kinds: what a kind of engine job is, declared once for the engine and the web process.

Plain Python: the web UI imports this module (the body is named as a "module:function" string and imported only in
the engine process that runs the job, so the web process never imports torch). A kind names:

    name        "train", "export", ...: `python -m engine run JOB_DIR --kind NAME` runs a job of it
    config      its pydantic config type; JOB/config.yaml holds one (`load` reads it where the type alone cannot)
    job_dir     its folder type (engine.jobs.rundir): file names, log file, outputs
    folder      where its jobs live in a workspace (WORKSPACE/FOLDER/NAME)
    lane/slots  jobs of one lane share its slots (the device lane: one job per device set, webui.jobs.devices)
    body        "module:function", called with a JobContext (engine.jobs.lifecycle) and returning an Outcome

Kinds are registered in KINDS (`register`); a kind declared outside the engine (a test's, a plug-in's) is known to
the web process once its module is imported, and to the engine process through KINDS_ENV: a comma-separated list of
modules that `kind_of` imports when it is asked for a kind it does not know (the web process's environment is the
engine's, so setting it once where launch.py starts is enough).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.config import ExportConfig, RunConfig, load_config
from engine.config_compare import CompareConfig
from engine.config_eval import EvalConfig
from engine.errors import UserError
from engine.jobs.rundir import CompareJobDir, EvalDir, ExportDir, JobDir, RunDir

KINDS_ENV = "WORKBENCH_JOB_KINDS"


class UnknownKindError(UserError, KeyError):
    """A kind name no module has registered; the message is one sentence."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class JobKind:
    name: str
    config: type[BaseModel]
    job_dir: type[JobDir]
    folder: str  # under the workspace
    lane: str  # jobs of one lane share its slots (the device lane: one job at a time on each device set)
    slots: int
    body: str  # "module:function", imported only in the engine process that runs the job
    load: Callable[[Path], Any] | None = None  # reads JOB/config.yaml where validating the type alone is not enough
    interruptible: bool = False  # a stop raises KeyboardInterrupt in the body (one that cannot poll for it)

    def read_config(self, job: JobDir) -> Any:
        """The job's config.yaml as its type; FileNotFoundError without one, ValueError when it does not validate."""
        if self.load is not None:
            return self.load(job.config)
        if hasattr(job, "read_config"):  # the folder type's own reader (ExportDir's), with its sentences
            return job.read_config()
        if not job.config.is_file():
            raise FileNotFoundError(f"{job.path} is not a {self.name} job folder: it has no {job.config.name}.")
        return self.config.model_validate(job.read_raw_config())

    def load_body(self) -> Callable[[Any], Any]:
        module, _, function = self.body.partition(":")
        return getattr(importlib.import_module(module), function)


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Make a kind known (again: a module imported twice re-registers the same declaration)."""
    KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> JobKind:
    """The registered kind `name`, importing the modules KINDS_ENV lists first when it is not known yet."""
    if name not in KINDS:
        for module in filter(None, (m.strip() for m in os.environ.get(KINDS_ENV, "").split(","))):
            importlib.import_module(module)
    if name not in KINDS:
        raise UnknownKindError(f"There is no job kind named {name!r} (known: {', '.join(sorted(KINDS))}); a kind "
                               f"declared outside the engine is found through {KINDS_ENV}=MODULE.")
    return KINDS[name]


TRAIN = register(JobKind("train", RunConfig, RunDir, folder="runs", lane="device", slots=1,
                         body="engine.train.recipe:train_body", load=load_config))
# Exports merge on the CPU or beside a training run, as they always have: their own lane, two at a time. A stop
# interrupts one at once (nothing it writes is kept before it is verified and renamed into place).
EXPORT = register(JobKind("export", ExportConfig, ExportDir, folder="exports", lane="export", slots=2,
                          body="engine.export.merge:export_body", interruptible=True))
# An evaluation loads the base and generates: the training device's lane, one at a time. It polls for a stop between
# batches (nothing is written before it completes).
EVAL = register(JobKind("eval", EvalConfig, EvalDir, folder="evals", lane="device", slots=1,
                        body="engine.eval.job:eval_body"))
# A comparison trains and evaluates one method after another, each in an engine process of its own that it starts
# and waits for: it holds the training device's lane meanwhile, so that nothing else is started beside its runs. A
# stop is passed on to the method's process (it saves a checkpoint) and ends the comparison after it.
COMPARE = register(JobKind("compare", CompareConfig, CompareJobDir, folder="compares", lane="device", slots=1,
                           body="engine.compare.job:compare_body"))
