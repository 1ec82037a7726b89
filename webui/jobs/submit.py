"""The one way the page queues an engine job of any kind: `JobManager.submit(kind, name, config)`.

    name (allocated first) ──► config built and checked once ──► JOB/config.yaml + status.json "queued" ──► tick()

This is the only writer of a job's config.yaml and of its queued status in the web process (RunManager and
ExportManager delegate to it), so every kind is queued the same way and the scheduler starts it with
`python -m engine run JOB --kind KIND`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import BaseModel

from engine.errors import UserError
from engine.jobs.kinds import JobKind
from engine.jobs.outputs import clean_leftovers
from engine.jobs.rundir import JobDir
from webui.jobs.paths import safe_name
from webui.jobs.scheduler import QUEUED, Scheduler

Build = Callable[[JobDir, Any], BaseModel]  # the config as the job will run it, checked (raises before any write)


class JobExistsError(UserError, RuntimeError):
    """A job of that name is there already; the message is one sentence for the page."""


def config_yaml(config: BaseModel) -> str:
    """The config as config.yaml holds it: the type's own YAML where it has one (versions stamped), else its fields."""
    to_yaml = getattr(config, "to_yaml", None)
    return to_yaml() if to_yaml else yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


class JobManager:
    """Queues jobs into a workspace; their processes belong to the scheduler."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler

    def job(self, kind: JobKind, name: str) -> JobDir:
        """The folder of job `name` of a kind; PathError for a name that is not one plain name."""
        return kind.job_dir(self.scheduler.folder(kind) / safe_name(name))

    def submit(self, kind: JobKind, name: str, config: BaseModel | dict[str, Any], *, build: Build | None = None,
               replace: bool = False) -> JobDir:
        """Queue a job named `name` and tick the scheduler (it starts at once where its lane has a free slot).

        The config is validated as the kind's type and passed through `build` (which sees the job's folder: a run's
        output_dir is its folder; the path boundary refuses what is outside) before anything is written. A job of
        that name is an error (JobExistsError) unless `replace`, which clears what the earlier one wrote."""
        with self.scheduler.lock:
            job = self.job(kind, name)
            if (job.path.exists() or job.path.is_symlink()) and not replace:
                raise JobExistsError(f"A {kind.name} job named {job.name} already exists: choose another name.")
            checked = config if isinstance(config, kind.config) else kind.config.model_validate(config)
            checked = build(job, checked) if build is not None else checked
            job.path.mkdir(parents=True, exist_ok=True)
            if replace:
                job.clear_outputs()
                clean_leftovers(job.path)  # what an earlier, killed attempt left (its process is gone)
            self.requeue(job, checked)
            return job

    def requeue(self, job: JobDir, config: BaseModel | None = None) -> list[JobDir]:
        """Write the job's config (where given) and its queued status, and tick; returns the jobs the tick started."""
        with self.scheduler.lock:
            if config is not None:
                job.config.write_text(config_yaml(config), encoding="utf-8")
            job.write_status(QUEUED, pid=None, error=None)
            return self.scheduler.tick()
