"""Training runs in the workspace (WORKSPACE/runs/NAME/): submit, stop, cancel, delete, run again, list.

The processes are the scheduler's (webui.jobs.scheduler): a submitted run is a folder whose status.json says
"queued", and the scheduler starts it when the devices it needs are free (one run at a time on each device, runs
started from the command line into the workspace included; webui.jobs.devices).
"""

from __future__ import annotations

import shlex
import shutil
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.config import ConfigError, RunConfig, load_config
from engine.errors import UserError
from engine.estimate.advice import ADVICE
from engine.jobs.rundir import RunDir
from webui.jobs.devices import describe
from webui.jobs.monitor import JobMonitor
from webui.jobs.paths import safe_name, slug
from webui.jobs.scheduler import QUEUED, STARTING, TRAIN, Scheduler, holds_slot, read_job_status
from webui.jobs.submit import JobExistsError, JobManager

RERUNNABLE = ("failed", "stopped")  # the states from which a run can be started afresh


class RunError(UserError, RuntimeError):
    """A run action that cannot be done; the message is one sentence for the page."""


@dataclass
class RunInfo:
    """One row of the Runs tab, read from the run folder."""

    name: str
    path: Path
    state: str
    method: str = ""
    model: str = ""
    dataset: str = ""
    stage: str = "sft"  # train.stage
    start: str = ""  # model.adapter: the finished run it started from (its folder), or ""
    train_loss: float | None = None
    eval_loss: float | None = None
    kept: dict[str, Any] | None = None  # metrics.json's best: the checkpoint kept by train.metric_for_best
    wall_s: float | None = None
    created: float = 0.0
    error: str | None = None
    damaged: bool = False  # not a run the engine can read (listed with `error` as the reason; it can be deleted)
    waits_for: str = ""  # a queued run's devices that other runs hold or were queued for first: "GPU 0, GPU 1"

    @property
    def active(self) -> bool:
        return holds_slot(self.state)


class RunManager:
    """The training runs of one workspace; their processes belong to the scheduler."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.jobs = JobManager(scheduler)  # the one writer of config.yaml and the queued status
        self.runs_dir = scheduler.folder(TRAIN)
        self._infos: dict[str, tuple[tuple[int, ...], RunInfo]] = {}

    # ---- lookup -------------------------------------------------------------------------
    def entry(self, name: str) -> Path:
        """runs/NAME itself, never resolved (it may be a symlink); raises PathError for names that are not one
        plain name."""
        return self.runs_dir / safe_name(name)

    def run_dir(self, name: str) -> RunDir:
        """The folder of run `name`; raises PathError for names that leave the runs folder, RunError for a symlink
        (it is not followed: it can only be deleted)."""
        path = self.entry(name)
        if path.is_symlink():
            raise RunError(f"{name} is a symbolic link, not a run folder: it can only be deleted.")
        if not path.is_dir():
            raise RunError(f"There is no run named {name}.")
        return RunDir(path)

    def monitor(self, name: str) -> JobMonitor:
        return self.scheduler.monitor(self.run_dir(name))

    def info(self, name: str) -> RunInfo:
        entry = self.entry(name)
        if entry.is_symlink():  # listed as the scan judged it, never followed
            status = read_job_status(TRAIN, entry) or {}
            return RunInfo(name=name, path=entry, state=status["state"], damaged=True, error=status["error"])
        run = self.run_dir(name)
        stamp = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (run.config, run.status, run.metrics))
        cached = self._infos.get(name)
        if cached is None or cached[0] != stamp:
            cached = self._infos[name] = (stamp, read_info(run))
        info, waits = cached[1], self.scheduler.devices.waits.get(run.path)
        return replace(info, waits_for=describe(waits)) if waits and info.state == QUEUED else info

    def list(self) -> list[RunInfo]:
        """Every run in the workspace, newest first (folders that are not runs, or not started, are skipped)."""
        infos = []
        for name in self.scheduler.statuses(TRAIN):
            try:
                infos.append(self.info(name))
            except RunError:  # deleted since the snapshot
                continue
        return sorted(infos, key=lambda i: (i.created, i.name), reverse=True)

    def active(self) -> str | None:
        """The run that holds the training device (training or starting, or finished while its process exits)."""
        held = self.training()
        return held[0] if held else None

    def training(self) -> list[str]:
        """Every run holding the device: one from the page's queue, and any `launch.py train` started beside it
        from a terminal (the command line does not queue); the page's own first, so a page that opens while both
        train follows the run it started and names the terminal's beside it."""
        names = [name for kind, name in self.scheduler.holders(TRAIN.lane) if kind is TRAIN]
        return sorted(names, key=lambda name: not self.scheduler.launched(self.runs_dir / name))

    def queued(self) -> list[str]:
        return self.scheduler.queued(TRAIN)

    def ahead(self, name: str) -> str | None:
        """The job a queued run starts after: the one queued just before it for a device it needs (it takes the
        device first), else the one holding that device (webui.jobs.devices); None when it waits for none."""
        book = self.scheduler.devices
        waits = book.waits.get(self.runs_dir / name, ())
        queued = self.queued()
        before = queued[:queued.index(name)] if name in queued else []
        earlier = next((other for other in reversed(before) if set(waits) & book.of(self.run_dir(other))), None)
        holders = [book.held[label] for label in waits if label in book.held]
        return earlier or (holders[0] if holders else None)

    def alive(self, name: str) -> bool:
        return self.scheduler.alive(self.run_dir(name))

    def tensorboard_command(self, names: list[str]) -> str:
        """`tensorboard --logdir WORKSPACE/runs` where one of the runs `names` keeps a TensorBoard log (RUN/tb/,
        train.report_to), else "": the command opens every run of the workspace; the page starts no server."""
        logged = any(self.run_dir(name).tensorboard.is_dir() for name in names)
        return f"tensorboard --logdir {shlex.quote(str(self.runs_dir))}" if logged else ""

    def tick(self) -> str | None:
        """One scheduler tick; returns the run it started, if any."""
        started = [job.name for job in self.scheduler.tick() if isinstance(job, RunDir)]
        return started[0] if started else None

    # ---- actions -------------------------------------------------------------------------
    def submit(self, config: RunConfig, name: str | None = None) -> tuple[str, bool]:
        """Write the run folder and queue it; the scheduler starts it at once when the device is free.
        Returns (name, queued); PathError (nothing written) when the config names a path outside the boundary."""
        def build(run: RunDir, config: RunConfig) -> RunConfig:  # PathError for a model or dataset outside
            return self.scheduler.boundary.config(config.model_copy(update={"output_dir": str(run.path)}))

        with self.scheduler.lock:
            name = safe_name(name or self.new_name(config))
            try:
                run = self.jobs.submit(TRAIN, name, config, build=build)
            except JobExistsError:
                raise RunError(f"A run named {name} already exists: choose another name.") from None
            return name, run.read_status().get("state") == QUEUED  # still queued: another run holds the device

    def same_settings(self, config: RunConfig) -> str | None:
        """A queued or training run whose config is exactly `config` (its output folder and the versions the engine
        stamps aside), or None: Start pressed twice with a blank name would queue the same run twice."""
        def settings(run: RunConfig) -> dict[str, Any]:
            return run.model_dump(mode="json", exclude={"output_dir", "versions"})

        wanted = settings(config)
        for name in [*self.queued(), *self.training()]:
            try:
                if settings(self.run_dir(name).read_config()) == wanted:
                    return name
            except (OSError, ValueError, RunError):  # gone since the listing, or its config is not readable
                continue
        return None

    def new_name(self, config: RunConfig) -> str:
        model = slug(Path(config.model.name_or_path).name or "model", 24)
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{config.method.name}"
        name, n = base, 1
        while (self.runs_dir / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def stop(self, name: str) -> None:
        """Stop and save: SIGTERM, the engine saves the adapter so far and ends with state 'stopped'. A queued run
        leaves the queue (stopped before it started; Run again starts it)."""
        with self.scheduler.lock:
            run = self.run_dir(name)
            if run.read_status().get("state") == QUEUED:
                run.write_status("stopped", pid=None, error=None, note="stopped before it started")
                self.scheduler.scan()
                return
            if not self.scheduler.stop(run):
                raise RunError(f"Run {name} is not training.")

    def cancel(self, name: str) -> None:
        """Discard a run: a queued one is removed, a training one is killed and its folder deleted."""
        with self.scheduler.lock:
            run = self.run_dir(name)
            if self.info(name).active and self.scheduler.send_signal(run, signal.SIGKILL, group=True):
                self.scheduler.wait(run, timeout=30)
            self._remove(name)

    def rerun(self, name: str) -> bool:
        """Start a failed or stopped run afresh from its config.yaml, through the queue: its outputs are
        deleted first. Returns True when it waits in the queue behind another run."""
        return self._requeue(name, resume=False)

    def resume(self, name: str) -> bool:
        """Continue a failed or stopped run from its newest complete checkpoint, through the queue (a crash costs
        only the steps since that checkpoint; a stopped run trains on to its end). Nothing is deleted: the curve
        goes on from the checkpoint's step. Returns True when it waits in the queue behind another run."""
        return self._requeue(name, resume=True)

    def rerun_with(self, name: str, train: dict[str, Any]) -> bool:
        """Run a failed run again with `train` changed (a memory advice: engine.estimate.advice), resuming from its
        newest complete checkpoint where there is one, else afresh. Returns True when it waits in the queue."""
        resume = self.run_dir(name).last_checkpoint() is not None
        return self._requeue(name, resume=resume, train=train)

    def _requeue(self, name: str, resume: bool, train: dict[str, Any] | None = None) -> bool:
        action = "resumed" if resume else "run again"
        with self.scheduler.lock:
            state = self.info(name).state
            if state not in RERUNNABLE:
                raise RunError(f"Run {name} is {state}: only a failed or stopped run can be {action}.")
            if self.alive(name):
                raise RunError(f"Run {name} is still saving: try again in a moment.")
            run = self.run_dir(name)
            if resume and run.last_checkpoint() is None:
                raise RunError(f"Run {name} has no complete checkpoint to resume from (train.save_steps decides how "
                               "often they are written): use Run again to start it afresh.")
            try:
                config = load_config(run.config)
            except ConfigError as error:
                raise RunError(f"Run {name} cannot be {action}: {' '.join(error.issues)}") from None
            self.scheduler.boundary.config(config, run.path)  # before anything of the run is deleted
            if not resume:
                run.clear_outputs()
            changed = None
            if config.train.resume != resume or train:  # afresh, even if the last attempt resumed; or resumed
                update = {**(train or {}), "resume": resume}
                changed = config.model_copy(update={"train": config.train.model_copy(update=update)})
                (run.path / ADVICE).unlink(missing_ok=True)  # taken: a later failure says its own
            self._infos.pop(name, None)
            started = self.jobs.requeue(run, changed)
            return name not in [job.name for job in started if isinstance(job, RunDir)]

    def delete(self, name: str) -> None:
        """Delete a finished (or queued) run's folder; a training run must be stopped first."""
        with self.scheduler.lock:
            if self.info(name).active and self.alive(name):
                raise RunError(f"Run {name} is still training: stop or cancel it first.")
            self._remove(name)

    def _remove(self, name: str) -> None:
        entry = self.entry(name)
        self._infos.pop(name, None)
        if entry.is_symlink():
            entry.unlink()  # the link only: what it points to is not the workspace's
        else:
            run = self.run_dir(name)
            self.scheduler.forget(run)
            shutil.rmtree(run.path)
        self.scheduler.scan()


def read_info(run: RunDir) -> RunInfo:
    """A run's row: its status, the config's method, model and dataset, and the final figures. A run whose
    status.json or config.yaml cannot be read is damaged: listed with the reason, and it can still be deleted."""
    status = read_job_status(TRAIN, run.path) or {}  # the scan's own judgement (webui.jobs.scheduler)
    info = RunInfo(name=run.name, path=run.path, state=status.get("state", STARTING), error=status.get("error"),
                   created=run.config.stat().st_mtime if run.config.exists() else run.path.stat().st_mtime,
                   damaged=bool(status.get("damaged")))
    try:
        config = run.read_config()
        info.method, info.model, info.dataset = config.method.name, config.model.name_or_path, config.data.name
        info.stage, info.start = config.train.stage, config.model.adapter or ""
    except FileNotFoundError:  # an engine started from a terminal writes its status before its config
        if not holds_slot(info.state):
            info.damaged = True
            info.error = info.error or f"{run.name} has no {run.config.name}: it is not a run the engine wrote."
    except (OSError, ValueError) as error:
        info.damaged = True
        reason = str(error).splitlines()[0].replace(f"{run.config} ", "it ")  # the row names the run already
        info.error = info.error or f"{run.config.name} cannot be read: {reason}"
    try:
        metrics = run.read_metrics()  # checked: its figures are numbers (engine.jobs.rundir.MetricsFields)
    except (OSError, ValueError) as error:
        info.damaged, info.error = True, info.error or str(error)
        return info
    info.train_loss, info.eval_loss = metrics.get("train_loss"), metrics.get("eval_loss")
    info.kept = metrics.get("best") if isinstance(metrics.get("best"), dict) else None
    info.wall_s = metrics.get("wall_s")
    return info
