"""Start, stop, cancel, list and re-attach training runs; one run trains at a time, the rest queue.

The run folder is the single source of truth: a queued run is a folder whose status.json says
"queued", a training run is found again after a restart from the pid (and that process's start time)
in its status.json; a run started from the command line into the workspace is found the same way,
and counts for the one-at-a-time rule. In memory this module keeps only the Popen handles it created
(polled every tick, so no finished engine stays a zombie) and one RunMonitor per run.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from engine.config import ConfigError, RunConfig, load_config
from engine.events import EventWriter
from engine.rundir import FINAL_STATES, RunDir, process_alive, write_json_atomic
from webui.engine_cli import REPO_ROOT, engine_argv
from webui.monitor import RunMonitor
from webui.paths import PathError, inside, safe_name, slug

log = logging.getLogger(__name__)

QUEUED = "queued"
STARTING = "starting"
RERUNNABLE = ("failed", "stopped")  # the states from which a run can be started afresh
START_GRACE_S = 20.0  # a run with no pid yet counts as alive this long after its folder was written
LOG_TAIL_LINES = 20


class RunError(RuntimeError):
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
    train_loss: float | None = None
    eval_loss: float | None = None
    wall_s: float | None = None
    created: float = 0.0
    error: str | None = None

    @property
    def active(self) -> bool:
        return holds_machine(self.state)


def holds_machine(state: str) -> bool:
    """A run in this state is training or about to (not queued, not finished)."""
    return state not in FINAL_STATES and state != QUEUED


def still_exiting(status: dict[str, Any]) -> bool:
    """A finished run whose process has not exited yet (it may still hold GPU memory). Judged only where the
    status records the process's start time: an older status's pid may belong to another process by now."""
    return status.get("pid_started") is not None and process_alive(status)


def classify_death(returncode: int | None, log_tail: str) -> str:
    """One sentence on why an engine process ended without a final status."""
    text = log_tail.lower()
    if "out of memory" in text or "outofmemoryerror" in text:
        return "The engine ran out of GPU memory: lower batch_size or cutoff_len, or use qlora."
    if returncode in (-signal.SIGKILL, 137) or text.rstrip().endswith("killed"):
        return "The engine process was killed (SIGKILL), most likely by the out-of-memory killer."
    if returncode is not None and returncode < 0:
        return f"The engine process was ended by signal {signal.Signals(-returncode).name}."
    if returncode is not None:
        return f"The engine process exited with code {returncode} without a final status."
    return "The engine process is gone without a final status (killed, or the machine restarted)."


def tail_lines(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 16384) -> str:
    """The last `lines` lines of a text file, reading at most `max_bytes` from its end."""
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
        data = f.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


class RunManager:
    """The runs of one workspace (`WORKSPACE/runs/<name>/`)."""

    def __init__(self, runs_dir: Path, repo_root: Path = REPO_ROOT, engine: Callable[..., list[str]] = engine_argv):
        self.runs_dir = Path(runs_dir).resolve()
        self.engine = engine  # argv builder; tests pass a fake engine script
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.repo_root = repo_root
        self._procs: dict[str, subprocess.Popen] = {}
        self._monitors: dict[str, RunMonitor] = {}
        self._infos: dict[str, tuple[tuple[int, ...], RunInfo]] = {}
        self._lock = threading.RLock()
        self._stop_scheduler = threading.Event()

    # ---- lookup -------------------------------------------------------------------------
    def run_dir(self, name: str) -> RunDir:
        """The folder of run `name`; raises PathError for names that leave the runs folder."""
        path = inside(self.runs_dir / safe_name(name), self.runs_dir)
        if not path.is_dir():
            raise RunError(f"There is no run named {name}.")
        return RunDir(path)

    def monitor(self, name: str) -> RunMonitor:
        with self._lock:
            if name not in self._monitors:
                self._monitors[name] = RunMonitor(self.run_dir(name).path)
            return self._monitors[name]

    def info(self, name: str) -> RunInfo:
        run = self.run_dir(name)
        stamp = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (run.config, run.status, run.metrics))
        cached = self._infos.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        info = self._read_info(run)
        self._infos[name] = (stamp, info)
        return info

    def _read_info(self, run: RunDir) -> RunInfo:
        name = run.name
        status = run.read_status()
        info = RunInfo(name=name, path=run.path, state=status.get("state", STARTING), error=status.get("error"),
                       created=run.path.stat().st_mtime if not run.config.exists() else run.config.stat().st_mtime)
        if run.config.is_file():
            raw = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
            info.method = raw.get("method", {}).get("name", "")
            info.model = raw.get("model", {}).get("name_or_path", "")
            info.dataset = Path(raw.get("data", {}).get("path", "")).name
        metrics = run.read_metrics()
        info.train_loss, info.eval_loss, info.wall_s = (
            metrics.get("train_loss"), metrics.get("eval_loss"), metrics.get("wall_s"))
        return info

    def list(self) -> list[RunInfo]:
        """Every run in the workspace, newest first (folders that are not runs, or not started, are skipped)."""
        names = [p.name for p in self.runs_dir.iterdir()
                 if p.is_dir() and (p / "config.yaml").is_file() and (p / "status.json").is_file()]
        infos = [self.info(n) for n in names]
        return sorted(infos, key=lambda i: (i.created, i.name), reverse=True)

    def _statuses(self) -> dict[str, dict[str, Any]]:
        """name -> status.json of every run (cheap: the scheduler calls this every second).

        A folder without status.json was never started (a config saved there, or an engine a moment before
        its first status): it is nobody's to judge yet."""
        statuses = {}
        for path in self.runs_dir.iterdir():
            run = RunDir(path)
            if path.is_dir() and run.status.is_file():
                statuses[path.name] = run.read_status()
        return statuses

    def _states(self) -> dict[str, str]:
        return {name: status.get("state", STARTING) for name, status in self._statuses().items()}

    def active(self) -> str | None:
        """The run that holds the machine (training or starting, or finished but its process still exiting)."""
        for name, status in self._statuses().items():
            state = status.get("state", STARTING)
            if (holds_machine(state) and self.alive(name)) or (state in FINAL_STATES and still_exiting(status)):
                return name
        return None

    def queued(self) -> list[str]:
        """Queued runs, first queued first (status.json was written when the run was queued)."""
        names = [n for n, state in self._states().items() if state == QUEUED]
        return sorted(names, key=lambda n: ((self.runs_dir / n / "status.json").stat().st_mtime, n))

    def alive(self, name: str) -> bool:
        """Whether the process behind run `name` runs: ours by its handle, any other (a restart ago, or
        `launch.py train` in a terminal) by the pid and start time in its status.json."""
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            return True
        run = self.run_dir(name)
        status = run.read_status()
        if status.get("pid") and (proc is None or status["pid"] != proc.pid):
            return process_alive(status)
        if proc is not None:  # our engine ended
            return False
        # Written by us just before Popen, before the engine wrote its own status (with its pid).
        return time.time() - run.status.stat().st_mtime < START_GRACE_S if run.status.exists() else False

    def _pid(self, name: str) -> int | None:
        """The pid of the process that trains run `name`: the one its status.json names, else the one we started."""
        proc = self._procs.get(name)
        return self.run_dir(name).read_status().get("pid") or (proc.pid if proc is not None else None)

    # ---- actions -------------------------------------------------------------------------
    def submit(self, config: RunConfig, name: str | None = None) -> tuple[str, bool]:
        """Write the run folder and start it, or queue it when another run trains. Returns (name, queued)."""
        with self._lock:
            name = safe_name(name or self.new_name(config))
            run = RunDir(self.runs_dir / name)
            if run.path.exists():
                raise RunError(f"A run named {name} already exists: choose another name.")
            run.path.mkdir(parents=True)
            config = config.model_copy(update={"output_dir": str(run.path)})
            run.config.write_text(config.to_yaml(), encoding="utf-8")
            write_json_atomic(run.status, {"state": QUEUED, "pid": None, "error": None})
            started = self.tick()
            return name, started != name

    def new_name(self, config: RunConfig) -> str:
        model = slug(Path(config.model.name_or_path).name or "model", 24)
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{config.method.name}"
        name, n = base, 1
        while (self.runs_dir / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def tick(self) -> str | None:
        """Reap dead runs and start the oldest queued run when the machine is free; returns what it started."""
        with self._lock:
            for name, state in self._states().items():
                if holds_machine(state) and not self.alive(name):
                    self._mark_dead(name)
            self._reap()
            if self.active() is not None:
                return None
            queue = self.queued()
            if not queue:
                return None
            self._launch(queue[0])
            return queue[0]

    def _launch(self, name: str) -> None:
        run = self.run_dir(name)
        write_json_atomic(run.status, {"state": STARTING, "pid": None, "error": None})
        with open(run.stdout_log, "ab") as out:
            self._procs[name] = subprocess.Popen(
                self.engine("train", str(run.config)), cwd=self.repo_root, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        log.info("started run %s (pid %s)", name, self._procs[name].pid)

    def _reap(self) -> None:
        """Collect the exit of every engine process we started that ended (so none stays a zombie), and drop
        the handles of runs that are over."""
        for name, proc in list(self._procs.items()):
            if proc.poll() is None:
                continue
            path = self.runs_dir / name
            if not path.is_dir() or RunDir(path).read_status().get("state") in FINAL_STATES:
                del self._procs[name]

    def _mark_dead(self, name: str) -> None:
        """The engine is gone without a final status: record why, in the run folder, for every visitor."""
        run = self.run_dir(name)
        proc = self._procs.pop(name, None)
        returncode = proc.wait() if proc is not None else None
        status = run.read_status()
        if status.get("state") in FINAL_STATES or process_alive(status):  # it finished, or started again, meanwhile
            return
        tail = tail_lines(run.stdout_log)
        reason = status.get("error") or classify_death(returncode, tail)
        write_json_atomic(run.status, {**status, "state": "failed", "error": reason})
        with EventWriter(run.events) as events:
            events.status("failed", error=reason, died=True, log_tail=tail)
        self.monitor(name).refresh()

    def stop(self, name: str) -> None:
        """Stop and save: SIGTERM, the engine saves the adapter so far and ends with state 'stopped'."""
        self._signal(name, signal.SIGTERM)

    def cancel(self, name: str) -> None:
        """Discard a run: a queued one is removed, a training one is killed and its folder deleted."""
        with self._lock:
            info = self.info(name)
            if info.active and self.alive(name):
                self._signal(name, signal.SIGKILL, group=True)
                proc = self._procs.pop(name, None)
                if proc is not None:
                    proc.wait(timeout=30)
            self._remove(name)

    def rerun(self, name: str) -> bool:
        """Start a failed or stopped run afresh from its config.yaml, through the queue: its outputs are
        deleted first. Returns True when it waits in the queue behind another run."""
        with self._lock:
            state = self.info(name).state
            if state not in RERUNNABLE:
                raise RunError(f"Run {name} is {state}: only a failed or stopped run can be run again.")
            if self.alive(name):
                raise RunError(f"Run {name} is still saving: try again in a moment.")
            run = self.run_dir(name)
            try:
                config = load_config(run.config)
            except ConfigError as error:
                raise RunError(f"Run {name} cannot run again: {' '.join(error.issues)}") from None
            run.clear_outputs()
            if config.train.resume:  # afresh, even if the last attempt resumed
                run.config.write_text(config.model_copy(update={"train": config.train.model_copy(
                    update={"resume": False})}).to_yaml(), encoding="utf-8")
            write_json_atomic(run.status, {"state": QUEUED, "pid": None, "error": None})
            self._infos.pop(name, None)
            return self.tick() != name

    def delete(self, name: str) -> None:
        """Delete a finished (or queued) run's folder; a training run must be stopped first."""
        with self._lock:
            if self.info(name).active and self.alive(name):
                raise RunError(f"Run {name} is still training: stop or cancel it first.")
            self._remove(name)

    def _remove(self, name: str) -> None:
        path = self.run_dir(name).path
        self._monitors.pop(name, None)
        self._infos.pop(name, None)
        shutil.rmtree(path)

    def _signal(self, name: str, sig: signal.Signals, group: bool = False) -> None:
        pid = self._pid(name)
        if not pid or not self.alive(name):
            raise RunError(f"Run {name} is not training.")
        try:
            if group and os.getpgid(pid) == pid:
                # start_new_session: an engine we started leads its own group (dataloader workers too); one
                # started in a terminal may share the shell's group, and then only it is signalled.
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            raise RunError(f"Run {name} has already ended.") from None

    # ---- background scheduling -------------------------------------------------------------
    def start_scheduler(self, interval_s: float = 1.0) -> threading.Thread:
        """Run tick() every `interval_s` so a queued run starts even when no page is open."""

        def loop() -> None:
            while not self._stop_scheduler.wait(interval_s):
                try:
                    self.tick()
                except (OSError, RunError, PathError, ValueError):
                    # One unreadable run folder must not stop the queue; it is logged with its traceback.
                    log.exception("run scheduler tick failed")

        thread = threading.Thread(target=loop, name="run-scheduler", daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        self._stop_scheduler.set()


def read_config(run: RunDir) -> dict[str, Any]:
    """A run's config.yaml as a plain dict ({} when missing)."""
    if not run.config.is_file():
        return {}
    return yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
