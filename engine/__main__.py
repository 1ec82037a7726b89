"""`python -m engine COMMAND ...`: the engine's entry point, a dispatch table of sub-commands.

Each command lives in its own module as `main(argv) -> exit code`; modules are imported only when
their command runs, so `python -m engine inspect-data` never pays for what `train` needs.

A process that starts a command may ask, through the environment, for limits set before the command's
module is imported (engine/jobs/lifetime.py): PARENT_ENV, its own pid, to have the command killed when it ends;
MEMORY_ENV, a number of MB, to cap the command's memory. Both are removed from the environment the command
sees, so that its own children do not inherit them.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from typing import NoReturn

PARENT_ENV = "WORKBENCH_DIE_WITH_PARENT"
MEMORY_ENV = "WORKBENCH_MEMORY_CAP_MB"
CACHE_ENV = "WORKBENCH_CACHE_DIR"  # where training keeps tokenized rows for later runs (engine/data/tokcache.py)

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("engine.jobs.lifecycle", "run the job in JOB_DIR as a job of --kind NAME (what the web UI starts)"),
    "train": ("engine.train.recipe", "fine-tune a model from a YAML config (or --resume RUN_DIR)"),
    "chat": ("engine.chat.cli", "chat with a base model and adapters (--worker: JSON lines on stdin/stdout)"),
    "export": ("engine.export.cli",
               "merge a run's adapter into its base and write a Hugging Face model (or --job DIR)"),
    "eval": ("engine.eval.job", "evaluate base and tuned models on a test set: loss, answers, metrics (a job)"),
    "compare": ("engine.compare.cli", "compare methods: one run per method on the same data and budget, and a table"),
    "inspect-data": ("engine.cli.inspect_data", "detect a dataset's format and measure it; prints one JSON object"),
    "plan": ("engine.cli.plan", "count the trainable parameters a config would train; prints JSON"),
    "estimate": ("engine.cli.estimate", "a config's memory by part from config.json; a config diff where it won't fit"),
    "serve": ("engine.serve.cli", "serve a workspace's runs (or --model DIR) over an OpenAI-compatible HTTP API"),
}


def usage() -> str:
    lines = ["usage: python -m engine COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<13} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command '{command}'.\n{usage()}", file=sys.stderr)
        return 2
    problem = apply_limits()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        return module.main(rest)
    except BrokenPipeError:  # the reader of stdout has gone (`inspect-data ... | head`): nothing is left to tell it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush writes nowhere, quietly
        return 141  # as a shell reports a command ended by SIGPIPE


def apply_limits() -> str | None:
    """Set the limits the environment asks for; a sentence saying why one could not be set, else None."""
    from engine.jobs import lifetime

    parent, cap = os.environ.pop(PARENT_ENV, ""), os.environ.pop(MEMORY_ENV, "")
    if not all(value.isdigit() for value in (parent, cap) if value):
        return f"{PARENT_ENV} and {MEMORY_ENV} must be whole numbers, not {parent!r} and {cap!r}."
    try:
        if parent:
            lifetime.die_with_parent(int(parent))
        if cap:
            lifetime.cap_memory(int(cap))
    except lifetime.LifetimeError as error:
        return str(error)
    except (OSError, ValueError) as error:  # setrlimit refused the cap
        return f"The engine could not cap its memory ({error}): start it without {MEMORY_ENV}."
    return None


def exit_without_teardown(code: int) -> NoReturn:
    """End an engine command's process once the command has returned: threads that are not daemons are joined, the
    exit handlers run (logging's flush among them) and the standard streams are flushed, as at any exit, but the
    interpreter's teardown of every imported module is skipped. That teardown writes nothing and takes about 0.8 s
    once torch, transformers and peft are imported (this project's 2-core machines), which a user and the page's
    queue would otherwise wait for after the run has ended. Only for a process that the command owns: never call it
    from a process that goes on."""
    for thread in threading.enumerate():  # as at any exit, threads that are not daemons finish first
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_without_teardown(main())
