"""A fake OpenAI-compatible judge for tests: an HTTP server on a thread of the test's own process (no process
started) that records every chat-completions request and answers with what `reply(request) -> (status, body)`
says. The default reply scores, per row, the answer that equals the reference 9 and every other one 2, reading
the letters from the request as a judge would."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], tuple[int, Any]]
ANSWER = re.compile(r"Answer ([A-Z]):\n(.*?)(?=\n\nAnswer [A-Z]:|\n\nReply with)", re.DOTALL)
REFERENCE = re.compile(r"Reference answer:\n(.*?)\n\nAnswer A:", re.DOTALL)


def answers_of(request: dict[str, Any]) -> dict[str, str]:
    """letter -> answer text, as the request shows them."""
    return dict(ANSWER.findall(request["messages"][-1]["content"]))


def completion(content: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": content}, "finish_reason": "stop"}]}


def by_reference(request: dict[str, Any]) -> tuple[int, Any]:
    reference = REFERENCE.search(request["messages"][-1]["content"])
    right = reference.group(1) if reference else None
    scores = {letter: 9 if text == right else 2 for letter, text in answers_of(request).items()}
    return 200, completion(f"Scores: {json.dumps(scores)}")


@contextmanager
def fake_judge(reply: Reply = by_reference) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(base_url, the requests received, with their Authorization header under "_auth") while the server runs."""
    requests: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({**body, "_path": self.path, "_auth": self.headers.get("Authorization")})
            status, answer = reply(body)
            data = (answer if isinstance(answer, str) else json.dumps(answer)).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
