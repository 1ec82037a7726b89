"""The chat worker: `python -m engine chat --worker`, what the web UI starts, over a ChatSession.

Requests come in as JSON lines on stdin, each with an "id"; answers go out on stdout as engine.jobs.events
events (one `to_line` a line, `kind` naming each), carrying the request's id; logs go to stderr. So the web
server never imports torch, and ending the worker frees the memory.

    started                      -> status {"state": "ready"}
    {"id":1,"op":"load","model":null,"adapters":{"ft":"RUN_DIR"},"bits":null,"roots":["WORKSPACE"]}
                                 -> reply {"op": "load", "data": {"model", "adapters", "full_models", "device",
                                                                  "start"}}
    {"id":2,"op":"generate","messages":[{"role":"user","content":"Hi"}],"adapter":"ft","system":null,
     "max_new_tokens":256,"temperature":0.0,"top_p":1.0,"top_k":50,"repetition_penalty":1.0,"seed":0}
                                 -> chunk {"text": "..."} ..., then
                                    reply {"op": "generate", "data": {"text", "content", "tool_calls",
                                                                      "new_tokens", "tokens_per_s"}}
    {"id":3,"op":"unload"}       -> reply {"op": "unload", "data": {}}
    {"id":4,"op":"status"}       -> reply {"op": "status", "data": {"loaded", "model", "adapters", "full_models",
                                                                    "bits", "start"}}
    {"id":5,"op":"shutdown"}     -> reply {"op": "shutdown", "data": {}}, and the worker exits

"adapters" names every source loaded over the base; "full_models" those of them that are a full or freeze run's
own model (loaded beside the base: no adapter), so a page can word what it loaded.

A generate request carries engine.sampling.SamplingConfig's fields (each optional: left out, its default),
checked once into a SamplingConfig before anything is generated. It may offer tools ("tools": a list of OpenAI
function schemas, as a dataset's tools column)
and carry tool turns: an assistant message with "tool_calls" ([{"name", "arguments"}] or OpenAI's shape) and
{"role": "tool", "content": RESULT} messages, each answering the next call, in order. Where tools are offered,
the reply is read for calls in the template's syntax: "tool_calls" (each {"type": "function", "function":
{"name", "arguments"}}) and "content", the text beside them; else "tool_calls" is empty and "content" the text.

A request ends at its reply, or at a status {"state": "failed", "error": "one sentence"} when it is refused
or fails; the worker keeps running either way.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from engine.chat.session import ChatError, ChatSession, Generation, check_params
from engine.errors import UserError
from engine.jobs.events import Chunk, Event, Reply, Status, to_line
from engine.jobs.failures import explain
from engine.sampling import SAMPLING_FIELDS

log = logging.getLogger("engine.chat.session")

OPS = ("load", "generate", "unload", "status", "shutdown")


class Worker:
    """The JSON-lines protocol over a ChatSession; `out` is the only stream answers are written to."""

    def __init__(self, out: Any, session: ChatSession | None = None):
        self.out = out
        self.session = session or ChatSession()

    def send(self, event: Event) -> None:
        self.out.write(to_line(event) + "\n")
        self.out.flush()

    def reply(self, request_id: Any, op: str, **data: Any) -> None:
        self.send(Reply(op=op, data=data, id=request_id))

    def handle_line(self, line: str) -> bool:
        """Answer one request line; False when the worker should exit."""
        request_id = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ChatError("A request must be a JSON object with an op.")
            request_id = request.get("id")
            op = request.get("op")
            if op not in OPS:
                raise ChatError(f"Unknown op {op!r}: use load, generate, unload, status or shutdown.")
            return getattr(self, f"op_{op}")(request_id, request) is not False
        except json.JSONDecodeError:
            self.send(Status(state="failed", error="The request is not valid JSON: send one object per line."))
        except UserError as error:  # a refused request: its message is the sentence
            self.send(Status(state="failed", error=error.sentence, id=request_id))
        except Exception as error:  # noqa: BLE001 - the worker must outlive any single request
            log.exception("request failed")
            self.send(Status(state="failed", error=explain(error, "chat"), id=request_id))
        return True

    def op_load(self, request_id: Any, request: dict) -> None:
        adapters = request.get("adapters") or {}
        if not isinstance(adapters, dict):
            raise ChatError("adapters must be an object of name -> run or adapter folder.")
        model = request.get("model")
        if model is not None and not isinstance(model, str):
            raise ChatError("model must be a hub id or a local folder, or null to take it from the runs.")
        if model is None and not adapters:
            raise ChatError("Nothing to load: give a model, or adapters whose runs name their base.")
        from engine.model.loading import device

        self.session.load(model, adapters, request.get("bits"), roots=request.get("roots"))
        self.reply(request_id, "load", model=self.session.model_name, adapters=self.session.adapters,
                   full_models=list(self.session.full_models), device=device(), start=self.session.start)

    def op_generate(self, request_id: Any, request: dict) -> None:
        unknown = set(request) - set(SAMPLING_FIELDS) - {"id", "op", "messages", "adapter", "system", "tools"}
        if unknown:
            raise ChatError(f"Unknown field(s) in generate: {', '.join(sorted(unknown))}.")
        sampling = check_params({name: request[name] for name in SAMPLING_FIELDS if name in request})
        system = request.get("system")
        if system is not None and not isinstance(system, str):
            raise ChatError("system must be a string or null.")
        reply = Generation()
        for chunk in self.session.generate(request.get("messages"), request.get("adapter"), system, reply,
                                           request.get("tools"), sampling):
            self.send(Chunk(text=chunk, id=request_id))
        self.reply(request_id, "generate", text=reply.text, content=reply.content, tool_calls=reply.tool_calls,
                   new_tokens=reply.new_tokens, tokens_per_s=round(reply.tokens_per_s, 2))

    def op_unload(self, request_id: Any, _request: dict) -> None:
        self.session.unload()
        self.reply(request_id, "unload")

    def op_status(self, request_id: Any, _request: dict) -> None:
        self.reply(request_id, "status", **self.session.status())

    def op_shutdown(self, request_id: Any, _request: dict) -> bool:
        self.reply(request_id, "shutdown")
        return False

    def serve(self, lines: Any) -> int:
        self.send(Status(state="ready"))
        for line in lines:
            if line.strip() and not self.handle_line(line):
                break
        return 0


def protocol_stdout() -> Any:
    """A private copy of stdout for the protocol; fd 1 and sys.stdout then point at stderr, so a stray
    print from any library can never corrupt the event lines."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def run_worker() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    out = protocol_stdout()
    stdin = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the worker
    return Worker(out).serve(stdin)
