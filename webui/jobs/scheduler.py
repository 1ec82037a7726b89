"""The web process's one scheduler of engine jobs (training runs, exports): it starts queued jobs, a lane
at a time, reaps every process it starts, records why a job died, and keeps the snapshot of every job's
status that the page reads (visitors never scan the workspace themselves).

    page action ──► JOB/config.yaml + status.json "queued" ──► tick() ──► python -m engine run JOB ──┐
                                                                 ▲                                   │
           JobMonitor.refresh() ◄── JOB/events.jsonl ◄───────────┼─────── the engine process ◄──────┘
                                                                 └ poll(): exit code, reaped at once

A job folder is the single source of truth: a job started by an earlier launch.py, or from the command
line into the workspace, is found again from the pid and start time in its status.json. In memory this
module keeps only the processes it started (until their job is over) and one JobMonitor per job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config_distributed import visible_devices
from engine.jobs.events import FINAL_STATES, EventWriter
from engine.jobs.failures import OomWitness, disk_full, explain_exit
from engine.jobs.kinds import EXPORT, KINDS, TRAIN, JobKind  # noqa: F401 - TRAIN, EXPORT: re-exported
from engine.jobs.outputs import clean_leftovers
from engine.jobs.rundir import JobDir, process_alive
from webui.jobs.boundary import Boundary
from webui.jobs.commands import REPO_ROOT, engine_argv
from webui.jobs.devices import (
    DEVICE_LANE,
    DeviceBook,
    GpuList,
    configured_devices,
    processes,
)
from webui.jobs.monitor import JobMonitor
from webui.jobs.paths import PathError
from webui.jobs.processtree import kill_tree
from webui.jobs.statuses import START_GRACE_S, damaged, read_job_status, tail_lines  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

QUEUED, STARTING = "queued", "starting"
SNAPSHOT_MAX_AGE_S = 1.0  # a read older than this rescans (the scheduler's thread rescans every second)
ORPHAN_GRACE_S = 20.0  # an engine whose folder was deleted has this long to end on SIGTERM before SIGKILL


@dataclass
class Launch:
    """An engine process this scheduler started, kept until its job is over and the process reaped."""

    proc: subprocess.Popen
    oom: OomWitness  # what tells, if it dies of SIGKILL, whether the kernel's OOM killer killed it
    stop_requested: bool = False  # Stop was pressed: a SIGTERM death is a stop, not a failure
    orphaned_at: float | None = None  # when its job folder was found deleted while it ran (it is ended then)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None  # poll() also reaps it once it has exited


def holds_slot(state: str) -> bool:
    """A job in this state runs or is about to (not queued, not finished)."""
    return state not in FINAL_STATES and state != QUEUED


class Scheduler:
    def __init__(self, workspace: Path, repo_root: Path = REPO_ROOT, engine: Callable[..., list[str]] = engine_argv,
                 kinds: tuple[JobKind, ...] | None = None, gpus: Callable[[], GpuList] | None = None):
        self.workspace = Path(workspace).resolve()
        self.repo_root = repo_root
        self.engine = engine  # argv builder; tests pass a fake engine script
        self.boundary = Boundary(self.workspace)  # AppContext sets the server's (with its --allow-path folders)
        kinds = tuple(KINDS.values()) if kinds is None else kinds  # every kind registered (engine.jobs.kinds)
        self.kinds = {kind.name: kind for kind in kinds}
        for kind in kinds:
            self.folder(kind).mkdir(parents=True, exist_ok=True)
        self._launches: dict[Path, Launch] = {}  # by job folder
        self._monitors: dict[Path, JobMonitor] = {}
        self._snapshot: dict[str, dict[str, dict[str, Any]]] = {}
        self._scanned_at = 0.0
        self.version = 0  # grows whenever a job's status changes (the page re-renders lists only then)
        self.lock = threading.RLock()  # held across a read-decide-write of a job's status (runs, exports)
        self._stop = threading.Event()
        self._disk_full: set[Path] = set()  # jobs whose files a full disk kept from being written: said once
        self.devices = DeviceBook(gpus)  # the device lane's queue per device set (tests pass a faked GPU list)

    # ---- lookup ---------------------------------------------------------------------------------------
    def folder(self, kind: JobKind) -> Path:
        return self.workspace / kind.folder

    def monitor(self, job: JobDir) -> JobMonitor:
        with self.lock:
            if job.path not in self._monitors:
                self._monitors[job.path] = JobMonitor(job)
            return self._monitors[job.path]

    def scan(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Read every job's status.json (kind -> name -> status); see `read_job_status`."""
        with self.lock:
            snapshot: dict[str, dict[str, dict[str, Any]]] = {}
            for kind in self.kinds.values():
                statuses = snapshot[kind.name] = {}
                for path in sorted(self.folder(kind).iterdir()):
                    status = read_job_status(kind, path)
                    if status is not None:
                        statuses[path.name] = status
            if snapshot != self._snapshot:
                self.version += 1
            self._snapshot, self._scanned_at = snapshot, time.monotonic()
            return snapshot

    def statuses(self, kind: JobKind) -> dict[str, dict[str, Any]]:
        """name -> status of every job of a kind, from the snapshot (rescanned when it is older than a second)."""
        with self.lock:
            if time.monotonic() - self._scanned_at > SNAPSHOT_MAX_AGE_S:
                self.scan()
            return dict(self._snapshot.get(kind.name, {}))

    def alive(self, job: JobDir) -> bool:
        """Whether the process behind a job runs: ours by its handle (its exit is its death), any other (a
        restart ago, or `launch.py train` in a terminal) by the pid and start time in its status.json."""
        launch = self._launches.get(job.path)
        if launch is not None and launch.running:
            return True
        status = job.read_status()
        if status.get("pid") and (launch is None or status["pid"] != launch.proc.pid):
            return process_alive(status)
        if launch is not None:  # our engine ended
            return False
        # Queued -> starting was written just before Popen (by us, or by another launch.py on this workspace).
        return status.get("state") == STARTING and time.time() - job.status.stat().st_mtime < START_GRACE_S

    def holders(self, lane: str) -> list[tuple[JobKind, str]]:
        """The jobs that hold a lane's slots: running or starting, or finished while their process still exits
        (it may still hold GPU memory; judged only where the status records the process's start time)."""
        held = []
        for kind in self.kinds.values():
            if kind.lane != lane:
                continue
            for name, status in self.statuses(kind).items():
                state = status.get("state", STARTING)
                job = kind.job_dir(self.folder(kind) / name)
                exiting = state in FINAL_STATES and status.get("pid_started") is not None and process_alive(status)
                if (holds_slot(state) and self.alive(job)) or exiting:
                    held.append((kind, name))
        return held

    def launched(self, path: Path) -> bool:  # this scheduler started its engine (the page's queue), not a terminal
        return path in self._launches

    def queued(self, kind: JobKind) -> list[str]:
        """Queued jobs of a kind, first queued first (status.json was written when the job was queued)."""
        names = [name for name, status in self.statuses(kind).items() if status.get("state") == QUEUED]
        return sorted(names, key=lambda n: (self._mtime(self.folder(kind) / n / "status.json"), n))

    @staticmethod
    def _mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    # ---- the loop -------------------------------------------------------------------------------------
    def tick(self) -> list[JobDir]:
        """Reap ended processes, record jobs whose process died, start queued jobs where their lane has a
        free slot; returns the jobs it started."""
        with self.lock:
            snapshot = self.scan()
            for kind in self.kinds.values():
                for name, status in snapshot[kind.name].items():
                    job = kind.job_dir(self.folder(kind) / name)
                    if holds_slot(status.get("state", STARTING)):
                        self._guarded(job, lambda job=job: self.alive(job) or self._mark_dead(job))
            self._end_orphans()
            self._drop_finished()
            started = []
            for lane in {kind.lane for kind in self.kinds.values()}:
                started += self._fill(lane)
            if started:
                self.scan()
            return started

    def _fill(self, lane: str) -> list[JobDir]:
        """Start the queued jobs of a lane that may start now: in the device lane each one whose devices are free
        (webui.jobs.devices: one queue per device set), in another lane as many as it has free slots."""
        kinds = [kind for kind in self.kinds.values() if kind.lane == lane]
        queued = sorted((self._mtime(self.folder(kind) / name / "status.json"), kind.name, name)
                        for kind in kinds for name in self.queued(kind))
        waiting = [(self.kinds[k], self.kinds[k].job_dir(self.folder(self.kinds[k]) / name)) for _, k, name in queued]
        held = self.holders(lane)
        if lane == DEVICE_LANE:
            holders = [kind.job_dir(self.folder(kind) / name) for kind, name in held]
            free = {job.path for job in self.devices.plan(holders, [job for _, job in waiting])}
            waiting = [(kind, job) for kind, job in waiting if job.path in free]
            slots = len(waiting)
        else:
            slots = kinds[0].slots - len(held)
        started = []
        for kind, job in waiting:
            if len(started) >= slots:
                break
            if self._guarded(job, lambda kind=kind, job=job: self._admitted(job) and self._launch(kind, job) is None):
                started.append(job)
        return started

    def _guarded(self, job: JobDir, action: Callable[[], Any]) -> Any:
        """`action()` for one job; whatever its files make it raise is logged with the job's name, and the loop
        goes on to the next job (one damaged folder never stops it); a full disk is said once a job, not every tick."""
        try:
            result = action()
        except Exception as error:  # noqa: BLE001 - logged with its traceback; every other job is still served
            if not disk_full(error):
                log.exception("job %s: its files could not be handled; the scheduler goes on", job.name)
            elif job.path not in self._disk_full:
                self._disk_full.add(job.path)
                log.warning("job %s: the disk is full, its status cannot be written: %s", job.name, error)
            return None
        self._disk_full.discard(job.path)
        return result

    def _admitted(self, job: JobDir) -> bool:
        """Whether the job's config keeps its engine inside the boundary (webui.jobs.boundary); a job that does not
        is failed with the reason, and no process is started for it. A config that cannot be read at all is
        left to the engine, which reads no path from it and says in its own words what is wrong."""
        try:
            self.boundary.admit(job)
        except PathError as error:
            job.write_status("failed", pid=None, error=str(error))
            with EventWriter(job.events) as events:
                events.status("failed", error=str(error))
            log.warning("%s not started: %s", job.name, error)
            return False
        except (OSError, ValueError) as error:
            log.info("%s: its config cannot be read here (%s); the engine will say why", job.name,
                     str(error).splitlines()[0] if str(error) else error.__class__.__name__)
        return True

    def _launch(self, kind: JobKind, job: JobDir) -> None:
        job.write_status(STARTING, pid=None, error=None)
        with open(job.stdout_log, "ab") as out:
            proc = subprocess.Popen(
                self.engine(*self.command(kind, job)), cwd=self.repo_root, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self._device_env(kind, job)},
            )
        self._launches[job.path] = Launch(proc, OomWitness.start(proc.pid))
        log.info("started %s job %s (pid %s)", kind.name, job.name, proc.pid)

    @staticmethod
    def command(kind: JobKind, job: JobDir) -> tuple[str, ...]:
        """The engine's arguments for a job: `run JOB --kind KIND`; a run of several processes is started as
        `train JOB/config.yaml`, which starts torchrun (engine/train/launch.py) and waits for its ranks."""
        if kind.name == TRAIN.name and processes(job) > 1:
            return ("train", str(job.config))
        return ("run", str(job.path), "--kind", kind.name)

    @staticmethod
    def _device_env(kind: JobKind, job: JobDir) -> dict[str, str]:  # a device job sees only the GPUs it was given
        return visible_devices(str(configured_devices(job) or "auto")) if kind.lane == DEVICE_LANE else {}

    def _end_orphans(self) -> None:
        """End the engines whose job folder was deleted while they ran (their slot would look free): SIGTERM to the
        group, SIGKILL after ORPHAN_GRACE_S; the engine also notices itself. _drop_finished then reaps them."""
        for path, launch in self._launches.items():
            if path.is_dir() or not launch.running:
                continue
            if launch.orphaned_at is None:
                launch.orphaned_at = time.monotonic()
                log.warning("job %s: its folder was deleted while it ran: its engine is ended", path.name)
            late = time.monotonic() - launch.orphaned_at > ORPHAN_GRACE_S
            if late:  # its group, and the ranks torchrun started in their own (webui.jobs.processtree)
                kill_tree(launch.proc.pid)
                continue
            with contextlib.suppress(ProcessLookupError):  # start_new_session: it leads its own group
                os.killpg(launch.proc.pid, signal.SIGTERM)

    def _drop_finished(self) -> None:
        """Reap every engine process we started that ended (so none stays a zombie) and forget those whose job
        is over: a final status, or a folder that is gone."""
        for path, launch in list(self._launches.items()):
            if not launch.running and self._snapshot_state(path) in (*FINAL_STATES, None):
                del self._launches[path]

    def _snapshot_state(self, path: Path) -> str | None:
        for kind in self.kinds.values():
            if path.parent == self.folder(kind):
                return self._snapshot.get(kind.name, {}).get(path.name, {}).get("state")
        return None

    def _mark_dead(self, job: JobDir) -> None:
        """The engine is gone without a final status: record why, in the job folder, for every visitor."""
        status = job.read_status()
        if status.get("state") in FINAL_STATES or status.get("damaged") or process_alive(status):
            return  # it finished, or started again, meanwhile
        launch = self._launches.get(job.path)  # None for a job we did not start: exit code and OOM count unknown
        returncode = launch.proc.returncode if launch is not None else None
        tail = tail_lines(job.stdout_log)
        if launch is not None and launch.stop_requested and returncode == -signal.SIGTERM:
            state, reason = "stopped", None  # Stop ended it before it could handle the signal (still importing)
        else:
            oom_killed = launch.oom.verdict() if launch is not None else None
            state = "failed"
            reason = status.get("error") or explain_exit(returncode, tail, job.kind, oom_killed, job.path)
        job.write_status(**{**status, "state": state, "error": reason})  # stamped with the status schema
        with EventWriter(job.events) as events:
            events.status(state, error=reason, died=True, log_tail=tail)
        log.info("%s ended without a final status: %s (%s)", job.name, state, reason)

    # ---- actions --------------------------------------------------------------------------------------
    def send_signal(self, job: JobDir, sig: signal.Signals, group: bool = False) -> bool:
        """Send `sig` to a job's engine process; False when it has none running. Only a process proven to be the
        job's is signalled: the one status.json names whose start time matches what it recorded, or the one this
        scheduler started (its handle); never a pid alone, which may since belong to an unrelated process."""
        launch = self._launches.get(job.path)
        if group and sig == signal.SIGKILL and launch is not None and launch.running:
            return kill_tree(launch.proc.pid)  # our engine's group, and the ranks torchrun started in their own
        status = job.read_status()
        if process_alive(status):  # pid and start time as the job's engine recorded them
            pid = status["pid"]
        elif launch is not None and launch.running:
            pid = launch.proc.pid
        else:
            return False
        try:
            if group and os.getpgid(pid) == pid:
                # start_new_session: an engine we started leads its own group (dataloader workers too); one
                # started in a terminal may share the shell's group, and then only it is signalled.
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def stop(self, job: JobDir) -> bool:
        """SIGTERM a job's engine (it stops and saves); False when it has no process running. A process that a
        stop ends before it could handle the signal (still importing) is recorded as stopped, not failed."""
        sent = self.send_signal(job, signal.SIGTERM)
        if sent and job.path in self._launches:
            self._launches[job.path].stop_requested = True
        return sent

    def wait(self, job: JobDir, timeout: float) -> None:
        """Wait for our process of a job to exit (and reap it); nothing to wait for when it is not ours."""
        launch = self._launches.get(job.path)
        if launch is not None:
            launch.proc.wait(timeout=timeout)

    def forget(self, job: JobDir) -> None:
        """Drop what is kept in memory about a job whose folder is being deleted."""
        with self.lock:
            self._monitors.pop(job.path, None)

    def children(self) -> list[subprocess.Popen]:
        """The engine processes this scheduler started that have not been reaped yet."""
        with self.lock:
            return [launch.proc for launch in self._launches.values() if launch.running]

    # ---- background -----------------------------------------------------------------------------------
    def start(self, interval_s: float = 1.0) -> threading.Thread:
        """Run tick() every `interval_s`, so a queued job starts, and a finished one is reaped, with no page open."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - logged with its traceback; the next tick goes on
                    log.exception("scheduler tick failed")

        thread = threading.Thread(target=loop, name="job-scheduler", daemon=True)
        thread.start()
        return thread

    def clean_leftovers(self) -> list[Path]:
        """Remove the partial folders and zips that killed engine processes left in job folders (their writers
        are gone; a live writer's are kept). The server does this when it starts."""
        removed = []
        for kind in self.kinds.values():
            for path in self.folder(kind).iterdir():
                if path.is_dir() and not path.is_symlink():
                    removed += clean_leftovers(path)
        for path in removed:
            log.info("removed %s, left by a killed engine process", path)
        return removed

    def shutdown(self) -> None:
        self._stop.set()
