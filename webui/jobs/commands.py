"""Short engine commands the page runs and waits for (`inspect-data`, `plan`): one JSON object back,
or the engine's one-sentence error. Each runs in its own process so the web server never loads torch.

Their answers are cached on disk (EngineCache, under WORKSPACE/.cache/engine/), keyed by everything an
answer depends on: the dataset file's content, the model folder's files, the options, and the engine's
own code and library versions. Every visitor and every later start of the server shares them, and at
most one process per command runs at a time: visitors asking for the same answer wait for that one process.

The processes never outlive the server: each is killed by the kernel when the server ends, however it ends
(Linux; engine/jobs/lifetime.py), and the server kills those still running when it exits normally (elsewhere
too). An inspect-data process reads a bounded sample of the file (engine/data/sample.py) and is capped at
MEMORY_CAPS_MB of writable memory.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.__main__ import MEMORY_ENV, PARENT_ENV
from engine.config import RunConfig
from engine.errors import UserError
from engine.jobs.rundir import write_json_atomic
from engine.sentences import SAID_ENV, Sentence, heard

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_LIMIT = 500  # answers kept on disk; the oldest go first
# Writable memory (RLIMIT_DATA) an inspection may use: it measures at most 2,000 rows (16 MB of text) of any
# file, 352 MB at its peak with the demo model's tokenizer (tests/bench/inspect_big.py); a bigger tokenizer
# and long rows need more, a runaway process is stopped here.
MEMORY_CAPS_MB = {"inspect-data": 2048}


class EngineCommandError(UserError, RuntimeError):
    """An engine command failed; str(error) is the engine's one-sentence reason."""


def engine_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def last_sentence(stderr: str) -> Sentence:
    """The engine prints its reason as the last non-empty stderr line (tracebacks come before it), with its
    message key on the line before where it has one (engine.sentences.tell)."""
    return heard(stderr, "the engine exited without saying why.")


def engine_env(command: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an engine command the page waits for: this process's, plus `extra`, plus the limits
    the engine sets itself at start: killed when this process ends, and the command's memory cap, if any; and the
    key of its last sentence asked for (engine.sentences.SAID_ENV), which last_sentence reads back."""
    env = {**os.environ, **(extra or {}), PARENT_ENV: str(os.getpid()), SAID_ENV: "1"}
    if command in MEMORY_CAPS_MB:
        env[MEMORY_ENV] = str(MEMORY_CAPS_MB[command])
    return env


_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


@atexit.register
def end_running() -> None:
    """Kill the engine commands still running (at the server's exit; on Linux the kernel does it anyway)."""
    with _running_lock:
        for process in _running:
            process.kill()


def run_json(args: list[str], timeout: float = 180.0, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m engine ARGS` and return the JSON object it prints; raise EngineCommandError otherwise.
    `env` adds to (or overrides) this process's environment.

    The calling thread waits for the process: the kernel's parent-death signal follows the thread that
    started a process, so the process must not be started by a thread that ends before it."""
    process = subprocess.Popen(
        engine_argv(*args), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, env=engine_env(args[0], env), start_new_session=True,
    )
    with _running_lock:
        _running.add(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise EngineCommandError(f"`engine {args[0]}` took longer than {timeout:.0f} s and was stopped.") from None
    finally:
        with _running_lock:
            _running.discard(process)
    if process.returncode < 0:
        raise EngineCommandError(ended_by_signal(args[0], -process.returncode))
    if process.returncode != 0:
        raise EngineCommandError(last_sentence(stderr))
    lines = stdout.strip().splitlines()  # the answer is the last line (a JSON object); nothing else parses it
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise EngineCommandError(f"`engine {args[0]}` printed no result.")
    return answer


def ended_by_signal(command: str, number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    cap = MEMORY_CAPS_MB.get(command)
    if cap and number in (signal.SIGABRT, signal.SIGSEGV, signal.SIGKILL):
        return (f"`engine {command}` was ended by {name}, most likely at its memory cap of {cap:,} MB: "
                "split the dataset's very long rows.")
    return f"`engine {command}` was ended by {name}: try again, and see the server's log if it happens again."


def inspect_args(path: Path, *, data_format: str = "auto", model: str | None = None, cutoff_len: int | None = None,
                 overlength: str | None = None, columns: dict[str, str] | None = None,
                 replace: dict[str, str] | None = None) -> list[str]:
    """`inspect-data` of a dataset: format, rows, preview, one rendered example with its trained spans, token
    lengths (with `model`'s tokenizer, where given)."""
    args = ["inspect-data", "--data", str(path)]
    if data_format and data_format != "auto":
        args += ["--format", data_format]
    if model:
        args += ["--model", model]
    if cutoff_len:
        args += ["--cutoff-len", str(int(cutoff_len))]
    if overlength:
        args += ["--overlength", overlength]
    if columns:
        args += ["--columns", json.dumps(columns)]
    if replace:
        args += ["--replace", json.dumps(replace, ensure_ascii=False)]
    return args


def plan(config_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Trainable and total parameter counts of a config, without training."""
    return run_json(["plan", str(config_path)], env=env)


# ---- what an answer depends on ------------------------------------------------------------------------

@lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """Changes with the engine's code and the libraries it measures with, so an upgrade never serves an old answer."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "engine").glob("*.py")):
        digest.update(path.read_bytes())
    for package in ("transformers", "tokenizers", "peft", "jinja2"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none".encode())
    return digest.hexdigest()[:16]


_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """sha256 of a file's content, read once per (path, size, modification time)."""
    stat = path.stat()
    stamp = (str(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        known = _digests.get(stamp)
    if known:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    with _digests_lock:
        _digests[stamp] = digest.hexdigest()
    return _digests[stamp]


def model_fingerprint(model: str | None) -> Any:
    """A local model folder: its files' names, sizes and times; a hub id: the id itself."""
    if not model:
        return None
    folder = Path(model)
    if not folder.is_dir():
        return model
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return [str(folder.resolve())] + [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


@dataclass(frozen=True)
class EngineJob:
    """One engine command and everything its answer depends on (the cache key)."""

    command: str
    depends_on: dict[str, Any]
    run: Callable[[Path], dict[str, Any]] = field(compare=False)  # takes a scratch folder

    @property
    def digest(self) -> str:
        key = json.dumps({"command": self.command, "engine": engine_fingerprint(), **self.depends_on},
                         sort_keys=True, default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:32]


def inspect_job(path: Path, *, data_format: str = "auto", model: str | None = None, cutoff_len: int | None = None,
                overlength: str | None = None, columns: dict[str, str] | None = None,
                replace: dict[str, str] | None = None) -> EngineJob:
    """`inspect-data` of a dataset file (with the tokenizer of `model`, a folder or a hub id, where given; with the
    placeholders `replace` names filled)."""
    args = inspect_args(path, data_format=data_format, model=model, cutoff_len=cutoff_len, overlength=overlength,
                        columns=columns, replace=replace)
    depends_on = {"data": file_digest(path), "suffix": path.suffix.lower(), "format": data_format,
                  "model": model_fingerprint(model), "cutoff_len": int(cutoff_len or 0), "overlength": overlength}
    if columns:  # only where given: the page's inspection (no column map) keeps its cached answers
        depends_on["columns"] = columns
    if replace:
        depends_on["replace"] = replace
    return EngineJob("inspect-data", depends_on, lambda _scratch: run_json(args))


def plan_job(config: RunConfig, env: dict[str, str] | None = None) -> EngineJob:
    """`plan` of a run config: it depends only on the model and the method."""
    depends_on = {"model": model_fingerprint(config.model.name_or_path), "revision": config.model.revision,
                  "trust_remote_code": config.model.trust_remote_code, "method": config.method.model_dump(mode="json")}

    def run(scratch: Path) -> dict[str, Any]:
        path = scratch / f"plan-{os.getpid()}-{threading.get_ident()}.yaml"
        path.write_text(config.to_yaml(), encoding="utf-8")
        try:
            return plan(path, env=env)
        finally:
            path.unlink(missing_ok=True)

    return EngineJob("plan", depends_on, run)


class EngineCache:
    """Answers of engine jobs on disk, one JSON file per job digest. At most one process per command runs at
    a time, so visitors asking for the same answer wait for one process and then read its file, or get its
    error: a failure is shared with those who were waiting for it, not kept for later requests (a model may
    be downloaded, a file fixed)."""

    def __init__(self, root: Path):
        self.root = root
        self._slots: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[float, EngineCommandError]] = {}  # digest -> (when it failed, the error)

    def path(self, job: EngineJob) -> Path:
        return self.root / f"{job.command}-{job.digest}.json"

    def cached(self, job: EngineJob) -> dict[str, Any] | None:
        path = self.path(job)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def answer(self, job: EngineJob, wanted: Callable[[], bool] = lambda: True,
               failed_within_s: float = 0.0) -> dict[str, Any] | None:
        """The cached answer, or run the job for it; None where `wanted()` turned false while waiting for the
        command's turn (nobody is waiting for this answer any more, so no process is started). A failure of the
        same job less than `failed_within_s` seconds ago is raised again instead of running the job again (Start
        refusing what the page has just shown)."""
        found = self.cached(job)
        if found is not None:
            return found
        asked = time.monotonic()
        failed_at, error = self._failures.get(job.digest, (0.0, None))
        if error is not None and asked - failed_at < failed_within_s:
            raise error
        with self._slot(job.command):
            found = self.cached(job)  # another visitor's process may have answered meanwhile
            if found is not None or not wanted():
                return found
            failed_at, error = self._failures.get(job.digest, (0.0, None))
            if error is not None and failed_at >= asked:  # it failed while this request waited for it
                raise error
            result = self._run(job)
        self._prune()
        return result

    def _run(self, job: EngineJob) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            result = job.run(self.root)
        except EngineCommandError as error:
            self._failures[job.digest] = (time.monotonic(), error)
            for old in list(self._failures)[:-CACHE_LIMIT]:
                del self._failures[old]
            raise
        self._failures.pop(job.digest, None)
        write_json_atomic(self.path(job), result)
        return result

    def _slot(self, command: str) -> threading.Lock:
        with self._lock:
            return self._slots.setdefault(command, threading.Lock())

    def _prune(self) -> None:
        files = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:-CACHE_LIMIT]:
            old.unlink(missing_ok=True)


_caches: dict[Path, EngineCache] = {}
_caches_lock = threading.Lock()


def engine_cache(workspace: Path) -> EngineCache:
    """The one cache of a workspace (shared by every handler, so its per-command turns are shared too)."""
    with _caches_lock:
        return _caches.setdefault(workspace, EngineCache(workspace / ".cache" / "engine"))
