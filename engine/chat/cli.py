"""`python launch.py chat --model M [--adapter RUN]`: a terminal chat on a ChatSession (engine/chat/session.py).

`--worker` starts the web page's chat worker instead (engine/chat/worker.py): the same session code behind
JSON lines. Type a message to see the streamed reply; /base toggles the adapter, /adapter NAME switches
between loaded ones, /reset clears the conversation, /quit ends. `--tools FILE.json` offers tools (a JSON list
of function schemas, as a dataset's tools column): a reply that calls one is shown as `tool call: NAME({...})`,
and `/tool RESULT` answers it with the tool's result.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from engine.chat.session import ChatError, ChatSession, Generation, check_params
from engine.data.toolcalls import ToolDataError, call_signature, parse_tools
from engine.errors import UserError
from engine.jobs import rundir
from engine.sampling import SAMPLING_FIELDS, SamplingConfig


def parse_adapter_args(values: list[str]) -> dict[str, str]:
    """--adapter RUN or --adapter NAME=DIR -> {name: location}; a bare path is named after its folder."""
    adapters: dict[str, str] = {}
    for value in values:
        name, sep, location = value.partition("=")
        if not sep or Path(value).exists():
            location = value
            path = Path(value).resolve()
            name = path.parent.name if path.name == rundir.ADAPTER else path.name
        adapters[name] = location
    return adapters


def read_tools_file(path: str) -> list[dict]:
    """--tools FILE.json: the tools offered in every reply; ChatError, one sentence, for a file that cannot be."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ChatError(f"--tools {path} cannot be read ({error.__class__.__name__}): give a JSON file.") from None
    try:
        return parse_tools(text)
    except ToolDataError as error:
        raise ChatError(f"--tools {path}: {error.field_name} {error.problem}.") from None


def repl(session: ChatSession, system: str | None, sampling: SamplingConfig, lines: Any = None,
         tools: list[dict] | None = None) -> int:
    """Terminal chat: type a message, see the streamed reply; /base, /adapter NAME, /tool RESULT, /reset, /quit."""
    adapter = session.adapters[0] if session.adapters else None
    history: list[dict[str, Any]] = []
    offered = f" and {len(tools)} tool(s); /tool RESULT answers a tool call" if tools else ""
    print(f"chatting with {session.model_name}" + (f" + {adapter}" if adapter else "") + offered +
          ". Commands: /base (toggle the adapter), /adapter NAME, /reset, /quit", file=sys.stderr)
    while True:
        try:
            label = adapter or "base"
            text = input(f"[{label}] you> ") if lines is None else next(lines)
        except (EOFError, StopIteration, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        text = text.strip()
        if not text:
            continue
        if text == "/quit":
            return 0
        if text == "/reset":
            history = []
            print("(conversation cleared)", file=sys.stderr)
            continue
        if text == "/base":
            adapter = None if adapter else (session.adapters[0] if session.adapters else None)
            print(f"(now answering with {adapter or 'the base model'})", file=sys.stderr)
            continue
        if text.startswith("/adapter"):
            name = text.partition(" ")[2].strip()
            if name not in session.adapters:
                print(f"(unknown adapter; loaded: {', '.join(session.adapters) or 'none'})", file=sys.stderr)
            else:
                adapter = name
            continue
        result = text.startswith("/tool ") or text == "/tool"
        history.append({"role": "tool", "content": text[6:].strip()} if result else {"role": "user", "content": text})
        reply = Generation()
        try:
            for chunk in session.generate(history, adapter, system, reply, tools, sampling):
                print(chunk, end="", flush=True)
        except ChatError as error:
            history.pop()
            print(f"\nerror: {error}", file=sys.stderr)
            continue
        print(flush=True)
        for call in reply.tool_calls:
            print(f"tool call: {call_signature(call)}", file=sys.stderr)
        hint = "; answer with /tool RESULT" if reply.tool_calls else ""
        print(f"({reply.new_tokens} tokens, {reply.tokens_per_s:.1f} tokens/s{hint})", file=sys.stderr)
        history.append(assistant_turn(reply))


def assistant_turn(reply: Generation) -> dict[str, Any]:
    """The reply as the history keeps it: its text, or the text beside its tool calls and the calls."""
    if not reply.tool_calls:
        return {"role": "assistant", "content": reply.text}
    return {"role": "assistant", "content": reply.content, "tool_calls": reply.tool_calls}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py chat", description="Chat with a model and adapters.")
    parser.add_argument("--worker", action="store_true", help="JSON lines on stdin/stdout (what the web UI runs)")
    parser.add_argument("--model", help="base model: hub id or folder (default: the base of the first run)")
    parser.add_argument("--adapter", action="append", default=[], metavar="RUN_OR_DIR",
                        help="a run folder or PEFT adapter folder, optionally NAME=DIR; repeatable")
    parser.add_argument("--bits", default=None, help="4, 8 or 0 (full precision); default: what the run used")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--tools", metavar="FILE.json",
                        help="offer these tools: a JSON list of function schemas (as a dataset's tools column)")
    add_sampling_flags(parser)
    args = parser.parse_args(argv)
    if args.worker:
        from engine.chat.worker import run_worker

        return run_worker()
    from engine.jobs.console import send_library_output_to_log

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    send_library_output_to_log()
    for library in ("py.warnings", "transformers", "peft", "bitsandbytes"):  # the terminal shows the chat only
        logging.getLogger(library).setLevel(logging.ERROR)
    if not args.model and not args.adapter:
        parser.error("give --model, or --adapter RUN whose config names the base model")
    session = ChatSession()
    try:
        sampling = sampling_from_args(args)
        tools = read_tools_file(args.tools) if args.tools else None
        print("loading ...", file=sys.stderr)
        session.load(args.model, parse_adapter_args(args.adapter), args.bits)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return repl(session, args.system, sampling, tools=tools)


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    """--max-new-tokens, --temperature ...: one flag per SamplingConfig field, its help and default the schema's,
    so the terminal chat samples as the page and the worker do unless told otherwise."""
    for name, field in SamplingConfig.model_fields.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float if field.annotation is float else int,
                            default=None, metavar="N" if field.annotation is not float else "X",
                            help=f"{field.description} Default: {field.default}.")


def sampling_from_args(args: argparse.Namespace) -> SamplingConfig:
    """The flags given, checked as a chat request's are; every other setting keeps the schema's default."""
    return check_params({name: getattr(args, name) for name in SAMPLING_FIELDS if getattr(args, name) is not None})

