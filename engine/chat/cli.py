"""`python launch.py chat --model M [--adapter RUN]`: a terminal chat on a ChatSession (engine/chat/session.py).

`--worker` starts the web page's chat worker instead (engine/chat/worker.py): the same session code behind
JSON lines. Type a message to see the streamed reply; /base toggles the adapter, /adapter NAME switches
between loaded ones, /reset clears the conversation, /quit ends. /again answers the last message a second time
with the other model (the base where the adapter answered, else the adapter; a new sample with only one model),
and `/better 1|2` appends the two answers as a preference pair, the better one chosen, to `--pairs FILE`
(engine/data/pairfile.py: the rows the Chat tab's rating writes, ready for a DPO or KTO run).
`--tools FILE.json` offers tools (a JSON list of function schemas, as a dataset's tools column): a reply that
calls one is shown as `tool call: NAME({...})`, and `/tool RESULT` answers it with the tool's result.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from engine.chat.session import ChatError, ChatSession, Generation, check_params
from engine.data.pairfile import PairError, append_pair, pair_row
from engine.data.toolcalls import ToolDataError, call_signature, parse_tools
from engine.errors import UserError
from engine.jobs import rundir
from engine.jobs.workspace import DEFAULT, add_workspace_flag, find_run
from engine.sampling import SAMPLING_FIELDS, SamplingConfig


def parse_adapter_args(values: list[str], workspace: str = DEFAULT) -> dict[str, str]:
    """--adapter RUN or --adapter NAME=DIR -> {name: location}; a bare path is named after its folder. A RUN or DIR
    that is no path that exists is a run's name in the workspace (WORKSPACE/runs/RUN): RunNotFoundError where it
    is neither."""
    adapters: dict[str, str] = {}
    for value in values:
        name, sep, location = value.partition("=")
        location = str(find_run(value if not sep or Path(value).exists() else location, workspace))
        if not sep or Path(value).exists():
            path = Path(location).resolve()
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


class Rating:
    """The answers to the last message that `/better 1|2` can pair: the turns before them and each answer's text."""

    def __init__(self, pairs: Path) -> None:
        self.pairs = pairs
        self.prompt: list[dict[str, Any]] = []
        self.answers: list[str] = []

    def handles(self, text: str, history: list[dict[str, Any]], session: ChatSession, adapter: str | None,
                system: str | None, sampling: SamplingConfig) -> bool:
        """Whether `text` is /reset, /again or /better N, which this carries out (history cleared in place)."""
        command, _, choice = text.partition(" ")
        if command == "/reset":
            history.clear()
            self.answers = []
            print("(conversation cleared)", file=sys.stderr)
        elif command == "/again" and not choice:
            try:
                self.again(session, adapter, system, sampling)
            except ChatError as error:
                print(f"\nerror: {error}", file=sys.stderr)
        elif command == "/better":
            self.better(choice.strip(), system)
        else:
            return False
        return True

    def again(self, session: ChatSession, adapter: str | None, system: str | None, sampling: SamplingConfig) -> None:
        """Answer the last message a second time with the other model (see the module's docstring)."""
        if len(self.answers) != 1:
            print("(/again answers the last message a second time: send a message first)", file=sys.stderr)
            return
        other = None if adapter else (session.adapters[0] if session.adapters else None)
        print(f"answer 2 ({other or 'base'}): ", end="", file=sys.stderr, flush=True)
        reply = Generation()
        for chunk in session.generate(self.prompt, other, system, reply, None, sampling):
            print(chunk, end="", flush=True)
        print(flush=True)
        self.answers.append(reply.text)
        print("(/better 1 or /better 2 saves the pair)", file=sys.stderr)

    def better(self, choice: str, system: str | None) -> None:
        """Append the pair, answer `choice` chosen; one line says where and how many pairs the file holds."""
        if choice not in ("1", "2") or len(self.answers) != 2:
            print("(/better 1 or /better 2 needs two answers to the last message: type /again first)",
                  file=sys.stderr)
            return
        chosen, rejected = self.answers if choice == "1" else self.answers[::-1]
        try:
            count = append_pair(self.pairs, pair_row(self.prompt, chosen, rejected, system))
        except (PairError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return
        self.answers = []
        print(f"(pair saved: {self.pairs} holds {count} pair{'s' if count != 1 else ''})", file=sys.stderr)


def repl(session: ChatSession, system: str | None, sampling: SamplingConfig, lines: Any = None,
         tools: list[dict] | None = None, pairs: Path = Path("chat-pairs.jsonl")) -> int:
    """Terminal chat: type a message, see the streamed reply; /base, /adapter NAME, /tool RESULT, /again,
    /better 1|2, /reset, /quit."""
    adapter = session.adapters[0] if session.adapters else None
    history: list[dict[str, Any]] = []
    rating = Rating(pairs)
    offered = f" and {len(tools)} tool(s); /tool RESULT answers a tool call" if tools else ""
    print(f"chatting with {session.model_name}" + (f" + {adapter}" if adapter else "") + offered +
          ". Commands: /base (toggle the adapter), /adapter NAME, /again, /better 1|2, /reset, /quit", file=sys.stderr)
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
        if rating.handles(text, history, session, adapter, system, sampling):  # /reset, /again, /better N
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
        rating.prompt, rating.answers = history[:-1], ([] if reply.tool_calls else [reply.text])


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
                        help="a run folder or PEFT adapter folder, or a run's name in the workspace; optionally "
                             "NAME=DIR; repeatable")
    add_workspace_flag(parser, "--adapter NAME finds the run runs/NAME there")
    parser.add_argument("--bits", default=None, help="4, 8 or 0 (full precision); default: what the run used")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--tools", metavar="FILE.json",
                        help="offer these tools: a JSON list of function schemas (as a dataset's tools column)")
    parser.add_argument("--pairs", metavar="FILE.jsonl", default="chat-pairs.jsonl",
                        help="where /better 1|2 appends preference pairs (default: chat-pairs.jsonl here)")
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
        session.load(args.model, parse_adapter_args(args.adapter, args.workspace), args.bits)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return repl(session, args.system, sampling, tools=tools, pairs=Path(args.pairs))


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

