"""Which Host headers a server on this machine answers (DNS rebinding: a page on evil.example whose name is made to
resolve to 127.0.0.1 reaches a loopback server with Host: evil.example). Plain Python and ASGI: the web page
(webui.app) and `launch.py serve` (engine.serve.cli) put the same guard in front of their apps."""

from __future__ import annotations

import ipaddress
from typing import Any


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


class HostGuard:
    """ASGI middleware that answers only requests addressed to this server by a name it was told (DNS rebinding: a
    page on evil.example whose name is made to resolve to 127.0.0.1 reaches the server with Host: evil.example).
    Loopback names are always accepted, and `hosts` (--host, --allow-host); with `share` the --share link's too.
    Any other Host is refused with 403 before Gradio sees the request (pages, the queue, files alike)."""

    def __init__(self, app: Any, hosts: tuple[str, ...] = (), share: bool = False):
        self.app = app
        self.hosts = {request_host(host) for host in hosts}
        self.share = share

    def allows(self, host: str) -> bool:
        return bool(host) and (is_loopback(host) or host in self.hosts or (self.share and host.endswith(SHARE_SUFFIX)))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if not self.allows(request_host(header)):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                name = request_host(header) or "no host"
                body = (f"This server answers only to the names it was started for, not {name}: start it with "
                        f"--allow-host {name} to reach it by that name.").encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
