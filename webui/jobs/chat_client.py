"""Client of the chat worker (`python -m engine chat --worker`): JSON requests on its stdin, engine.jobs.events
events on its stdout (engine/chat/worker.py describes the protocol).

One worker per web server, shared by every visitor; a reader thread parses each line with
`engine.jobs.events.parse` and routes the event to the request with the same id. A request ends at its Reply, or
at a failed Status (the worker refused it, failed it, or stopped). Unloading (or stopping the worker) frees
the model's memory; the model never lives in the web process.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.jobs.events import Chunk, Event, EventError, Reply, Status, parse
from engine.sampling import SamplingConfig
from engine.sentences import said
from webui.jobs.chat_tools import worker_turns
from webui.jobs.commands import REPO_ROOT, engine_argv

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
REPLY_TIMEOUT_S = 600.0


class ChatWorkerError(UserError, RuntimeError):
    """The worker refused a request or died; the message is one sentence for the page."""


def content_text(content: Any) -> str:
    """The text of one message's content as a chat UI holds it: a string, one part, or a list of parts.

    Gradio's Chatbot sends its history back with content as a list of parts ({"type": "text", "text": ...},
    {"type": "file", ...}, {"type": "component", ...}); the models here read text only, so text parts are joined
    and other parts dropped. Anything else is returned unchanged for the worker to refuse in one sentence.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, list):
        return "\n".join(part for part in map(content_text, content) if part)
    return content


def worker_messages(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A chat UI's history -> the worker's messages: {role, content as a string}, tool calls and results as the
    worker's turns (webui.jobs.chat_tools.worker_turns); other metadata and options dropped."""
    return worker_turns([{**message, "content": content_text(message.get("content"))}
                         if isinstance(message, dict) else message for message in history])


class ChatClient:
    def __init__(self, log_path: Path, repo_root: Path = REPO_ROOT,
                 argv: Callable[[], list[str]] = lambda: engine_argv("chat", "--worker"),
                 roots: tuple[Path, ...] | None = None):
        self.log_path = Path(log_path)
        self.roots = roots  # the folders the server may read (webui.jobs.boundary): the worker refuses the rest too
        self.repo_root = repo_root
        self.argv = argv
        self._proc: subprocess.Popen | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.Queue] = {}
        self._ready = threading.Event()
        self._lock = threading.RLock()
        self._generate_lock = threading.Lock()  # the worker answers one generation at a time
        self.loaded: dict[str, Any] | None = None
        self.cpu_only = False

    # ---- process --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, cpu_only: bool = False) -> None:
        with self._lock:
            if self.running and cpu_only == self.cpu_only:
                return
            self.stop()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            if cpu_only:
                env["CUDA_VISIBLE_DEVICES"] = ""  # the worker then loads on the CPU
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as err:
                self._proc = subprocess.Popen(
                    self.argv(), cwd=self.repo_root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                    text=True, encoding="utf-8", bufsize=1, start_new_session=True, env=env,
                )
            self.cpu_only = cpu_only
            self._ready.clear()
            threading.Thread(target=self._read, args=(self._proc,), name="chat-reader", daemon=True).start()
            ready = self._ready.wait(READY_TIMEOUT_S)  # also set when the worker ends first (_read)
            code = self._proc.poll()
            if not ready or code is not None:
                self.stop()
                ended = said("engine.chat.worker_ended", code=code) if code is not None else ""
                raise ChatWorkerError(said("engine.chat.worker_not_started", ended=ended))

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if not line.strip():
                continue
            try:
                event = parse(line)
            except EventError as error:  # the worker writes only events; anything else is logged, not routed
                log.warning("chat worker: %s", error)
                continue
            if isinstance(event, Status) and event.state == "ready" and event.id is None:
                self._ready.set()
            target = self._pending.get(event.id)
            if target is not None:
                target.put(event)
        # EOF: the worker is gone, and its model with it; every waiting request gets an error instead of hanging,
        # and a start that waits for "ready" learns at once that none will come.
        code = proc.wait()
        if self._proc is proc:
            self.loaded = None
            self._ready.set()
        for target in list(self._pending.values()):
            target.put(Status(state="failed", error=said("engine.chat.worker_stopped", code=code)))

    def stop(self) -> None:
        """Shut the worker down (asking first, killing if it does not answer)."""
        with self._lock:
            proc, self._proc, self.loaded = self._proc, None, None
            if proc is None or proc.poll() is not None:
                return
            try:
                proc.stdin.write(json.dumps({"id": 0, "op": "shutdown"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    # ---- requests -------------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> Iterator[Event]:
        """Send one request; yield its events up to and including its Reply. A failed Status raises ChatWorkerError."""
        if not self.running:
            self.start(self.cpu_only)
        request_id = next(self._ids)
        replies: queue.Queue = queue.Queue()
        self._pending[request_id] = replies
        try:
            with self._lock:
                self._proc.stdin.write(json.dumps({"id": request_id, "op": op, **fields}) + "\n")
                self._proc.stdin.flush()
            while True:
                try:
                    event = replies.get(timeout=REPLY_TIMEOUT_S)
                except queue.Empty:
                    raise ChatWorkerError(
                        f"The chat worker did not answer '{op}' in {REPLY_TIMEOUT_S:.0f} s.") from None
                if isinstance(event, Status) and event.state == "failed":
                    raise ChatWorkerError(event.error or "The chat worker reported an error.")
                yield event
                if isinstance(event, Reply):
                    return
        finally:
            self._pending.pop(request_id, None)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """A request whose only interesting event is its Reply: the reply's data."""
        *_, reply = self.request(op, **fields)
        return reply.data

    def load(self, model: str, adapters: dict[str, str], bits: int | None = None,
             cpu_only: bool = False) -> dict[str, Any]:
        self.start(cpu_only)
        try:
            roots = None if self.roots is None else [str(root) for root in self.roots]
            loaded = self.call("load", model=model, adapters=adapters, bits=bits, roots=roots)
            self.loaded = {**loaded, "sources": dict(adapters)}  # name -> the run or adapter folder it came from
        except ChatWorkerError:
            # a load that failed half way has unloaded the model before; one refused at once kept it
            if not self.running or not self.call("status").get("loaded"):
                self.loaded = None
            raise
        return self.loaded

    def unload(self) -> None:
        if self.running:
            self.call("unload")
        self.loaded = None

    def generate(self, messages: list[dict[str, Any]], adapter: str | None, tools: list[dict] | None = None,
                 reply: dict[str, Any] | None = None, system: str | None = None,
                 sampling: SamplingConfig | None = None) -> Iterator[str]:
        """Yield the reply so far after every chunk; the last value is the full reply, and `reply` (when given)
        gets the worker's reply data: its tool_calls and content where tools were offered. `sampling` (default:
        the schema's) travels as its fields, which the worker checks once more.

        `messages` may be a chat UI's history (content as a list of parts): see worker_messages.
        """
        if self.loaded is None:
            raise ChatWorkerError("No model is loaded: load a run or an adapter first.")
        messages = worker_messages(messages)
        offered = {"tools": tools} if tools else {}
        with self._generate_lock:
            text = ""
            settings = (sampling or SamplingConfig()).model_dump()
            for event in self.request("generate", messages=messages, adapter=adapter, system=system, **offered,
                                      **settings):
                if isinstance(event, Chunk):
                    text += event.text
                    yield text
                elif isinstance(event, Reply):
                    if reply is not None:
                        reply.update(event.data)
                    yield event.data.get("text", text)
