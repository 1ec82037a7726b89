"""How to talk to a served model: the command that serves it and a Python `openai` and a curl example, as the
Chat tab shows them for the loaded run. Plain Python: the web process imports it."""

from __future__ import annotations

import json
import shlex

API_KEY_ENV = "WORKBENCH_API_KEY"
DEFAULT_PORT = 8000


def serve_command(*, workspace: str | None = None, model_dir: str | None = None, port: int = DEFAULT_PORT) -> str:
    """`python launch.py serve ...` for a workspace's runs, or for one model folder."""
    if model_dir:
        return f"python launch.py serve --model {shlex.quote(model_dir)} --port {port}"
    source = f"--workspace {shlex.quote(workspace or 'workspace')}"
    return f"python launch.py serve {source} --port {port}"


def usage_text(model: str, *, workspace: str | None = None, model_dir: str | None = None,
               host: str = "127.0.0.1", port: int = DEFAULT_PORT, serving: bool = False) -> str:
    """The endpoint, the command that serves `model`, and a Python and a curl example asking it one question.
    `serving`: the page serves it now (on `port`), and the command is how to serve it from a terminal instead."""
    url = f"http://{host}:{port}/v1"
    how = ("# Served now by this page (Stop serving ends it); to serve it from a terminal instead:" if serving else
           f"# Serve it (in a terminal, in this project's folder; --api-key KEY or {API_KEY_ENV} to ask for a key):")
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 128},
                      ensure_ascii=False)
    return f"""{how}
{serve_command(workspace=workspace, model_dir=model_dir, port=port)}
# Endpoint: {url}    model: {model}

# Python (pip install openai):
from openai import OpenAI

client = OpenAI(base_url="{url}", api_key="KEY")  # any text when the server asks for no key
reply = client.chat.completions.create(model={_json_string(model)},
                                       messages=[{{"role": "user", "content": "Hello"}}])
print(reply.choices[0].message.content)

# curl:
curl {url}/chat/completions -H "Authorization: Bearer KEY" -H "Content-Type: application/json" \\
  -d {shlex.quote(body)}
"""


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
