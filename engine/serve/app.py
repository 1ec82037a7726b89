"""The FastAPI application: OpenAI's /v1/models, /v1/chat/completions and /v1/completions over one ChatSession.

One model is loaded at a time and answers one request at a time: a lock serializes generations (requests from
several clients queue, each gets its own reply; nothing is batched), and a request for a model of another group
(catalog.py) loads that group first, under the same lock. A streamed reply holds the lock until its last token;
a client that goes away mid-stream leaves its generation to finish before the next one starts, so the model is
never shared. Every error is OpenAI's body, {"error": {"message", "type", "param", "code"}}, its message one
sentence.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from engine.chat.session import ChatSession, Generation, check_messages, check_tools
from engine.errors import UserError
from engine.jobs.failures import explain
from engine.serve import protocol
from engine.serve.catalog import Catalog, GroupKey, Served
from engine.serve.protocol import ChatRequest, CompletionRequest, ServeError

log = logging.getLogger("engine.serve")


class Backend:
    """The catalog's models over one ChatSession, one generation at a time."""

    def __init__(self, catalog: Catalog, session: ChatSession | None = None):
        self.catalog = catalog
        self.session = session or ChatSession()
        self.lock = threading.Lock()
        self.loaded: GroupKey | None = None

    def find(self, name: str) -> Served:
        try:
            return self.catalog.find(name)
        except UserError as error:
            raise ServeError(str(error), 404, "model_not_found") from None

    def ensure(self, served: Served) -> None:
        """Load the served model's group unless it is loaded; call with the lock held."""
        if self.loaded != served.group:
            group = self.catalog.groups[served.group]
            self.loaded = None
            self.session.load(group.model, dict(group.adapters))
            self.loaded = served.group

    def stream(self, served: Served, start: Any) -> Iterator[str]:
        """The chunks of one generation (`start(session, cancel)` returns the session's iterator), under the lock.
        A stream closed early (its client went away) cancels the generation, and the lock is released once the
        generation has ended, so the next request never shares the model with it. That wait runs in a thread of
        its own: a generator may be closed by the garbage collector in any thread, the generating one included."""
        cancel = threading.Event()
        chunks = None
        self.lock.acquire()
        try:
            self.ensure(served)
            chunks = start(self.session, cancel)
            for chunk in chunks:  # noqa: UP028 - `yield from` would close `chunks` unfinished when this closes
                yield chunk
            chunks = None
        finally:
            if chunks is None:
                self.lock.release()
            else:  # closed early, or failed: end the generation, then free the model
                cancel.set()
                threading.Thread(target=self._finish, args=(chunks,), name="cancel", daemon=True).start()

    def _finish(self, chunks: Iterator[str]) -> None:
        try:
            for _ in chunks:
                pass
        except Exception:  # noqa: BLE001 - its request is gone or has its error already; the log keeps it
            log.exception("a cancelled generation failed")
        finally:
            self.lock.release()


def authorizer(api_key: str | None) -> Any:
    """The dependency every endpoint has: with a key, a request without it as its bearer token is a 401."""

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise ServeError("The API key is missing or wrong: send the server's key as Authorization: Bearer KEY.",
                             401, "invalid_api_key")

    return authorize


def create_app(backend: Backend, api_key: str | None = None) -> FastAPI:
    app = FastAPI(title="PEFT Workbench", docs_url=None, redoc_url=None, openapi_url=None)
    authorize = authorizer(api_key)
    add_error_handlers(app)

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    def models() -> dict[str, Any]:
        return protocol.model_list({name: served.owned_by for name, served in backend.catalog.models.items()})

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)], response_model=None)
    def chat_completions(body: ChatRequest) -> Any:
        served = backend.find(body.model)
        options, tools = body.sampling(), body.offered_tools()
        messages = body.conversation()
        check_messages(messages)  # refused before a stream starts: a 400, not an error inside the stream
        check_tools(tools)
        reply = Generation()
        chunks = backend.stream(served, lambda session, cancel: session.generate(
            messages, served.adapter, None, reply, tools, options, cancel))
        response_id = protocol.new_id("chatcmpl")
        if not body.stream:
            for _ in chunks:
                pass
            return protocol.chat_response(response_id, served.name, reply, options)
        return event_stream(chat_events(response_id, served.name, chunks, reply, options, bool(tools)))

    @app.post("/v1/completions", dependencies=[Depends(authorize)], response_model=None)
    def completions(body: CompletionRequest) -> Any:
        served = backend.find(body.model)
        options, prompt = body.sampling(), body.text()
        reply = Generation()
        chunks = backend.stream(served, lambda session, cancel: session.complete(
            prompt, served.adapter, reply, options, cancel))
        response_id = protocol.new_id("cmpl")
        if not body.stream:
            for _ in chunks:
                pass
            return protocol.completion_response(response_id, served.name, reply, options)

        def events() -> Iterator[dict[str, Any]]:
            for text in chunks:
                yield protocol.completion_chunk(response_id, served.name, text)
            yield protocol.completion_chunk(response_id, served.name, "", protocol.finish_reason(reply, options))

        return event_stream(events())

    return app


def chat_events(response_id: str, model: str, chunks: Iterator[str], reply: Generation, options: Any,
                tools_offered: bool) -> Iterator[dict[str, Any]]:
    """The chunks of a streamed chat reply: the role, the text as it comes (held back to the end where tools were
    offered, since a call is read from the whole reply), then the finish reason."""
    yield protocol.chat_chunk(response_id, model, {"role": "assistant", "content": ""})
    for text in chunks:
        if not tools_offered:
            yield protocol.chat_chunk(response_id, model, {"content": text})
    for delta in protocol.call_deltas(reply) if tools_offered else []:
        yield protocol.chat_chunk(response_id, model, delta)
    yield protocol.chat_chunk(response_id, model, {}, protocol.finish_reason(reply, options))


def event_stream(events: Iterator[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events, ended by [DONE]; an error after the stream began is sent as an error event."""

    def lines() -> Iterator[str]:
        try:
            for event in events:
                yield protocol.sse(event)
        except UserError as error:
            yield protocol.sse(protocol.error_body(str(error), 400, "invalid_request"))
        except Exception as error:  # noqa: BLE001 - the status is sent already: the client gets the sentence
            log.exception("a streamed reply failed")
            yield protocol.sse(protocol.error_body(explain(error, "chat"), 500, "server_error"))
        yield protocol.sse("[DONE]")

    return StreamingResponse(lines(), media_type="text/event-stream")


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure as OpenAI's error body, with its English sentence and a stable `code`
    (protocol.CODES)."""

    def answer(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
        return JSONResponse(protocol.error_body(message, status, code, param), status_code=status)

    @app.exception_handler(ServeError)
    def refused(_request: Request, error: ServeError) -> JSONResponse:
        return answer(error.status, str(error), error.code, error.param)

    @app.exception_handler(UserError)
    def user_error(_request: Request, error: UserError) -> JSONResponse:
        return answer(400, str(error), "invalid_request")

    @app.exception_handler(RequestValidationError)
    def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        if first["type"] == "json_invalid":  # its loc is the body and a character's position, not a field
            return answer(400, "The body is not valid JSON: send a JSON object, as OpenAI's API takes.",
                          "invalid_request")
        field = ".".join(str(part) for part in first["loc"] if part != "body")
        code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
        said = first["msg"] if first["msg"][:2].isupper() else first["msg"][0].lower() + first["msg"][1:]
        return answer(400, f"{field or 'The body'}: {said}.", code, field or None)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            return answer(404, "There is no such endpoint: use /v1/models, /v1/chat/completions or /v1/completions.",
                          "unknown_url")
        if error.status_code == 405:
            return answer(405, f"{request.url.path} does not take {request.method}: send GET to /v1/models and POST "
                          "to /v1/chat/completions and /v1/completions.", "method_not_allowed")
        return answer(error.status_code, str(error.detail), "invalid_request")

    @app.exception_handler(Exception)
    def failed(_request: Request, error: Exception) -> JSONResponse:
        log.exception("a request failed")
        return answer(500, explain(error, "chat"), "server_error")
