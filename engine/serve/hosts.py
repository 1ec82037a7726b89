"""Which Host headers a server on this machine answers (DNS rebinding: a page on evil.example whose name is made to
resolve to 127.0.0.1 reaches a loopback server with Host: evil.example). Plain Python and ASGI: the web page
(webui.app) and `launch.py serve` (engine.serve.cli) put the same guard in front of their apps."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from engine.sentences import Sentence, said


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SHARE_SUFFIX = ".gradio.live"  # the host a --share link's requests carry


def request_host(header: str) -> str:
    """The host of a Host header, without its port, lower case ("[::1]:7860" -> "::1")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


HOST_CODE = "host_not_allowed"  # the refusal's stable code (engine.serve.protocol.CODES)


class HostGuard:
    """ASGI middleware that answers only requests addressed to this server by a name it was told (DNS rebinding: a
    page on evil.example whose name is made to resolve to 127.0.0.1 reaches the server with Host: evil.example).
    Loopback names are always accepted, and `hosts` (--host, --allow-host); with `share` the --share link's too.
    Any other Host is refused with 403 before Gradio sees the request (pages, the queue, files alike): OpenAI's
    error body, its English sentence and the code HOST_CODE; where the guard has `word` (the web page's:
    `word(sentence, scope)` says an engine sentence in the visitor's language) a browser asking for a page
    (Accept: text/html) reads the sentence alone, in its visitor's language."""

    def __init__(self, app: Any, hosts: tuple[str, ...] = (), share: bool = False,
                 word: Callable[[Sentence, dict], str] | None = None):
        self.app = app
        self.hosts = {request_host(host) for host in hosts}
        self.share = share
        self.word = word

    def allows(self, host: str) -> bool:
        return bool(host) and (is_loopback(host) or host in self.hosts or (self.share and host.endswith(SHARE_SUFFIX)))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or ())
            header = headers.get(b"host", b"").decode("latin-1")
            if not self.allows(request_host(header)):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                kind, body = self.refusal(said("engine.serve.host_refused", name=request_host(header) or "no host"),
                                          scope, headers.get(b"accept", b"").decode("latin-1"))
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def refusal(self, sentence: Sentence, scope: dict, accept: str) -> tuple[bytes, bytes]:
        """The 403's content type and body: the sentence in the visitor's language for a browser at the page,
        else OpenAI's error body (English, with its code)."""
        if self.word is not None and "text/html" in accept:
            return b"text/plain; charset=utf-8", self.word(sentence, scope).encode()
        error = {"message": str(sentence), "type": "invalid_request_error", "param": None, "code": HOST_CODE}
        return b"application/json", json.dumps({"error": error}, ensure_ascii=False).encode()
