"""The OpenAI-compatible server (`python -m engine serve`, engine/serve/) as the Chat tab starts and stops it.

One ServeManager per workspace (AppContext.serve), so one server per workspace at a time, on loopback only, on
port 8000 when it is free and else on a free port the manager picks. The server is an engine process like the
others: its output goes to WORKSPACE/serve.log, it is killed by the kernel when the web server ends (PARENT_ENV,
engine/jobs/lifetime.py), and the manager reaps it. A server that dies (while loading or later) is reported as
stopped with the last sentence of its log, at once: start() watches the process while it waits for the server
to answer GET /v1/models, whose model names the page then shows. An API key travels in the WORKBENCH_API_KEY
environment variable, never on the command line, where any user of the machine can read it (`ps`).
"""

from __future__ import annotations

import atexit
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from engine.errors import UserError
from engine.sentences import Sentence, said
from engine.serve.examples import API_KEY_ENV, DEFAULT_PORT
from webui.jobs.commands import REPO_ROOT, engine_argv, engine_env, last_sentence

HOST = "127.0.0.1"
READY_TIMEOUT_S = 600.0  # loading a big model can take minutes; a server that dies meanwhile is reported at once
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this long


class ServingError(UserError, RuntimeError):
    """The server could not be started, or died while starting; the message is one sentence for the page."""


@dataclass(frozen=True)
class ServeSource:
    """What a server serves: a workspace's finished runs (and their bases), or one model (a folder or hub id)."""

    workspace: str | None = None
    model: str | None = None

    def args(self) -> list[str]:
        return ["--model", self.model] if self.model else ["--workspace", str(self.workspace)]


@dataclass(frozen=True)
class ServeState:
    """What the page shows. state: 'serving', 'starting' or 'stopped'; `error`: why a server that died stopped."""

    state: str = "stopped"
    port: int | None = None
    models: tuple[str, ...] = ()
    source: ServeSource | None = None
    error: str | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def port_free(port: int, host: str = HOST) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int = DEFAULT_PORT, host: str = HOST) -> int:
    """`preferred` when nothing listens on it, else a port the system says is free now."""
    if port_free(preferred, host):
        return preferred
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class _Spawner:
    """Starts processes from one thread that lives as long as the web process. The kernel's parent-death signal
    (engine/jobs/lifetime.py) follows the *thread* that started a process, and Gradio runs handlers on pool
    threads that end when idle: a server started from one would be killed seconds after the click."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, *args: Any, **options: Any) -> subprocess.Popen:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="engine-spawner", daemon=True)
                self._thread.start()
        answer: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((args, options, answer))
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _serve(self) -> None:
        while True:
            args, options, answer = self._requests.get()
            try:
                answer.put(subprocess.Popen(*args, **options))
            except Exception as error:  # noqa: BLE001 - handed to the caller, which raises it
                answer.put(error)


_spawner = _Spawner()
_managers: list[ServeManager] = []


@atexit.register
def _stop_all() -> None:
    """End the servers still running when the web process exits normally (on Linux the kernel does it anyway)."""
    for manager in list(_managers):
        manager.stop()


class ServeManager:
    def __init__(self, log_path: Path, repo_root: Path = REPO_ROOT,
                 argv: Callable[[list[str]], list[str]] = lambda args: engine_argv("serve", *args)):
        self.log_path = Path(log_path)
        self.repo_root = repo_root
        self.argv = argv
        self._proc: subprocess.Popen | None = None
        self._state = ServeState()
        self._api_key: str | None = None
        self._log_offset = 0
        self._lock = threading.RLock()
        _managers.append(self)

    def state(self) -> ServeState:
        """The server's state now; a server that has died is reaped here and shown as stopped with its reason."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self._state = ServeState(source=self._state.source, error=self._death())
                self._proc = None
            return self._state

    def start(self, source: ServeSource, api_key: str | None = None, port: int | None = None,
              timeout: float = READY_TIMEOUT_S) -> ServeState:
        """Start serving `source` and wait until it answers (or dies: ServingError with its last sentence)."""
        self.launch(source, api_key, port)
        return self.wait(timeout)

    def launch(self, source: ServeSource, api_key: str | None = None, port: int | None = None) -> ServeState:
        """Start the server (on `port`, else on one pick_port chooses) without waiting for it: its 'starting' state.
        Serving `source` already: that state; serving something else: ServingError (one server per workspace)."""
        with self._lock:
            now = self.state()
            if now.state != "stopped":
                if now.source == source:
                    return now
                raise ServingError(f"The server at {now.url} is serving {describe(now.source)}: press Stop serving "
                                   "first.")
            port = pick_port() if port is None else port
            env = engine_env("serve", {"PYTHONUNBUFFERED": "1"})
            env.pop(API_KEY_ENV, None)  # the page's box decides: no key unless one is typed there
            if api_key:
                env[API_KEY_ENV] = api_key
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as out:
                self._log_offset = out.tell()
                self._proc = _spawner.popen(
                    self.argv([*source.args(), "--host", HOST, "--port", str(port)]), cwd=self.repo_root,
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
            self._api_key = api_key or None
            self._state = ServeState("starting", port, source=source)
            return self._state

    def wait(self, timeout: float = READY_TIMEOUT_S) -> ServeState:
        """Wait until the server answers GET /v1/models: its state then, with the model names it serves (or the
        stopped state, where Stop serving was pressed meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                state, proc = self.state(), self._proc
            if state.state == "stopped":  # it died (its sentence), or Stop serving was pressed meanwhile
                if state.error:
                    raise ServingError(state.error)
                return state
            if state.state == "serving":
                return state
            models = self._models(state)
            if models is not None:
                with self._lock:
                    if self._proc is proc:
                        self._state = ServeState("serving", state.port, tuple(models), state.source)
                continue
            if time.monotonic() > deadline:
                self.stop()
                raise ServingError(f"The server did not answer within {timeout:.0f} s and was stopped: see "
                                   f"{self.log_path.name} in the workspace.")
            time.sleep(0.3)

    def _models(self, state: ServeState) -> list[str] | None:
        """The model names of GET /v1/models, None while the server does not answer yet."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            answer = httpx.get(f"{state.url}/models", headers=headers, timeout=5)
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        return [model.get("id", "?") for model in answer.json().get("data", [])]

    def stop(self) -> ServeState:
        """SIGTERM the server, SIGKILL it after STOP_GRACE_S, and reap it."""
        with self._lock:
            proc, self._proc = self._proc, None
            self._state = ServeState(source=self._state.source)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return self._state

    def _death(self) -> str:
        """Why the server ended: the last sentence of its log since it started (with its key where the server
        printed one: engine.sentences.tell), with its exit code."""
        code = self._proc.returncode if self._proc is not None else None
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                written = log.read()[-8192:].decode("utf-8", "replace")
        except OSError:
            written = ""
        last = last_sentence(written)
        reason = Sentence.made(last.removeprefix("error: "), last.key, last.values)  # its key kept: the page words it
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            return said("engine.serve.ended_by", signal=name, reason=reason)
        return said("engine.serve.stopped", code=code, reason=reason)


def describe(source: ServeSource | None) -> str:
    if source is None:
        return "nothing"
    return f"the model {source.model}" if source.model else f"the workspace {source.workspace}"

