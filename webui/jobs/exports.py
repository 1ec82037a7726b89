"""Export jobs (WORKSPACE/exports/RUN-DTYPE/): the verified export of a finished run, as a job the scheduler
starts (`python -m engine run FOLDER --kind export`). Like a training run, an export is found again from its
folder after a reload or a restart of launch.py: its state, log and downloads are all on disk."""

from __future__ import annotations

import json
from pathlib import Path

from engine.config import ExportConfig
from engine.config_stage import FULL_WEIGHT_METHODS
from engine.jobs.events import FINAL_STATES
from engine.jobs.exports import export_name
from engine.jobs.rundir import ExportDir, RunDir
from webui.jobs.monitor import JobSnapshot
from webui.jobs.paths import PathError, safe_name
from webui.jobs.scheduler import EXPORT, QUEUED, Scheduler
from webui.jobs.submit import JobManager


class ExportManager:
    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.jobs = JobManager(scheduler)  # the one writer of config.yaml and the queued status
        self.exports_dir = scheduler.folder(EXPORT)

    def job(self, name: str) -> ExportDir:
        """The folder of export `name`; PathError for a name that is not one plain name, or a symlink (never
        followed)."""
        path = self.exports_dir / safe_name(name)
        if path.is_symlink():
            raise PathError(f"exports/{name} is a symbolic link, not an export folder: it is not followed.")
        return ExportDir(path)

    def start(self, run: RunDir, dtype: str, shard_gb: float) -> ExportDir:
        """Queue the export of a run in `dtype` (it starts at once unless two exports run); an export of the same
        run and dtype that is under way is returned as it is, a finished one is replaced."""
        method = self.method_of(run)  # prefix, prompt, P-tuning export the adapter as trained: no dtype applies
        job = self.job(export_name(safe_name(run.name), method, dtype))
        with self.scheduler.lock:
            state = self.scheduler.statuses(EXPORT).get(job.name, {}).get("state")
            if state is not None and state not in FINAL_STATES and (state == QUEUED or self.scheduler.alive(job)):
                return job
            config = ExportConfig(run_dir=str(run.path), dtype=dtype, max_shard_size=f"{shard_gb:g}GB", zip=True)
            self.jobs.submit(EXPORT, job.name, config, replace=True)  # a finished one's outputs are cleared first
        return job

    @staticmethod
    def method_of(run: RunDir) -> str | None:
        """The run's method (lora, prefix, ...), or None where its config cannot be read (the export says why)."""
        try:
            return run.read_config().method.name
        except (OSError, ValueError):
            return None

    def latest(self, run: str) -> ExportDir | None:
        """The newest export job of a run (any dtype), or None."""
        jobs = []
        for name, status in self.scheduler.statuses(EXPORT).items():
            if status.get("damaged"):  # a symlink, or a folder the engine did not write: not an export to show
                continue
            job = self.job(name)
            try:
                if Path(job.read_config().run_dir).name == run:
                    jobs.append((job.status.stat().st_mtime, job))
            except (OSError, ValueError):  # being replaced, or damaged: not this run's export to show
                continue
        return max(jobs, key=lambda pair: pair[0])[1] if jobs else None

    def follow(self, job: ExportDir) -> JobSnapshot:
        return self.scheduler.monitor(job).refresh()

    @staticmethod
    def trained_weights(job: ExportDir) -> bool:
        """The export holds a full or freeze run's own weights (nothing was merged), as its model/export.json says;
        False where that file cannot be read."""
        try:
            facts = json.loads((job.out / "export.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(facts, dict) and facts.get("method") in FULL_WEIGHT_METHODS

    def downloads(self, job: ExportDir, snap: JobSnapshot) -> tuple[Path | None, Path | None]:
        """The merged-model zip and the adapter zip of a completed export, where they exist in its folder."""
        if snap.state != "completed":
            return None, None
        return tuple(path if path.is_file() and not path.is_symlink() else None for path in (job.zip, job.adapter_zip))
