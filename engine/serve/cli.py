"""`python launch.py serve [--workspace DIR | --model DIR] [--host H] [--port N] [--api-key KEY]`.

Serves the base model and every finished run of a workspace (or one model folder, a merged export say) over an
OpenAI-compatible HTTP API (engine/serve/app.py) with uvicorn, on loopback unless told otherwise. The first
group of models is loaded before the server answers, so a model that cannot load stops it with one sentence.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from engine.errors import UserError
from engine.sentences import said, tell
from engine.serve.examples import API_KEY_ENV, DEFAULT_PORT


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python launch.py serve", description=(
        "Serve a workspace's finished runs (each under its run name) and their base models, or one model folder, "
        "over an OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions."))
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--workspace", default="workspace",
                        help="the page's workspace: its runs/NAME folders are served (default: workspace)")
    source.add_argument("--model", metavar="DIR_OR_HUB_ID",
                        help="serve this model alone: a merged export folder, any model folder or a hub id")
    parser.add_argument("--name", help="the model name clients send with --model (default: the folder's name)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this "
                        "machine only; 0.0.0.0 answers other machines too: set an API key then)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=None, help=f"the key clients must send as a bearer token (default: "
                        f"the {API_KEY_ENV} environment variable; neither: no key is asked for)")
    parser.add_argument("--allow-host", metavar="HOST", action="append", default=[], dest="allow_host",
                        help="a name clients reach this server by, besides loopback names and --host (repeatable); "
                        "requests naming any other host are refused (403), so a web page cannot reach the server "
                        "through a name it points at this machine")
    return parser.parse_args(argv)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if port_in_use(args.host, args.port):  # before minutes of loading
        tell(said("engine.serve.port_in_use", port=args.port, host=args.host), prefix="error: ")
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: serving on {args.host} without an API key: anyone who can reach this machine can use the "
              f"models; set --api-key or {API_KEY_ENV}.", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from engine.jobs.console import send_library_output_to_log

    send_library_output_to_log()
    for library in ("py.warnings", "transformers", "peft"):
        logging.getLogger(library).setLevel(logging.ERROR)
    from engine.serve.catalog import single_model, workspace_catalog

    try:
        if args.model:
            catalog = single_model(args.model, args.name)
        else:
            workspace = Path(args.workspace).expanduser()
            if not workspace.is_dir():
                print(f"error: the workspace {workspace} does not exist: give --workspace DIR.", file=sys.stderr)
                return 2
            catalog = workspace_catalog(workspace)
        from engine.serve.app import Backend, create_app

        backend = Backend(catalog)
        print(f"loading {', '.join(catalog.models)} ...", file=sys.stderr)
        with backend.lock:
            backend.ensure(catalog.first)
    except UserError as error:
        tell(error.sentence, prefix="error: ")  # with its key where the page asked for it (engine.sentences)
        return 2
    import uvicorn

    print(f"serving {len(catalog.models)} model(s) at http://{args.host}:{args.port}/v1"
          + ("" if api_key else " without an API key"), file=sys.stderr, flush=True)
    from engine.serve.hosts import HostGuard

    guarded = HostGuard(create_app(backend, api_key), hosts=(args.host, *args.allow_host))
    uvicorn.run(guarded, host=args.host, port=args.port, log_level="warning")
    return 0
