"""Run the product's command line the way a user does, and write run configs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def engine_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def launch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python launch.py ARGS...` from the repository root; output captured as text."""
    return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT, env=engine_env(), capture_output=True,
                          text=True, timeout=timeout)


@contextlib.contextmanager
def engine_process_state_kept() -> Iterator[None]:
    """Gives back what an engine job changes in its process, for a job run in the test's own process: the
    signal handlers (SIGTERM/SIGINT become its stop flag) and bitsandbytes marked absent (engine.model.imports,
    for a process that trains one run without it)."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    had_bitsandbytes = "bitsandbytes" in sys.modules
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        if not had_bitsandbytes and "bitsandbytes" in sys.modules and sys.modules["bitsandbytes"] is None:
            del sys.modules["bitsandbytes"]


def train_in_process(*args: str) -> subprocess.CompletedProcess:
    """`python launch.py train ARGS...` run in this process, through the function launch.py calls for it
    (engine.train.recipe.main), with what it printed: for tests of what a run does rather than of how its process
    starts and ends, since each `launch.py` process spends about 5 s of CPU importing the libraries."""
    from engine.train.recipe import main

    out, err = io.StringIO(), io.StringIO()
    with engine_process_state_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["launch.py", "train", *args], code, out.getvalue(), err.getvalue())


def run_train_in_process(config: Any) -> int:
    """engine.train.recipe.run_train(config) in this process (a RunConfig, no file): its exit code."""
    from engine.train.recipe import run_train

    with engine_process_state_kept():
        return run_train(config)


def popen_launch(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "launch.py", *args], cwd=ROOT, env=engine_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def popen_printed(line: str, replace: dict[str, str] | None = None) -> subprocess.Popen:
    """One node's line of `--print-command` started as a shell would (its NAME=VALUE words before the program are
    its environment), each word that is a key of `replace` replaced by its value; output captured as text."""
    words = [(replace or {}).get(word, word) for word in shlex.split(line)]
    program = words.index(sys.executable)
    env = dict(word.split("=", 1) for word in words[:program])
    return subprocess.Popen(words[program:], cwd=ROOT, env={**engine_env(), **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def write_config(path: Path, model: Path, data: Path, output_dir: Path, method: dict[str, Any] | None = None,
                 train: dict[str, Any] | None = None, data_options: dict[str, Any] | None = None) -> Path:
    config = {
        "model": {"name_or_path": str(model)},
        "method": {"name": "lora", **(method or {})},
        "data": {"path": str(data), **(data_options or {})},
        "train": {"max_steps": 2, "batch_size": 2, "learning_rate": 1e-3, "save_steps": 50, **(train or {})},
        "output_dir": str(output_dir),
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


MEMORISE = [
    {"instruction": "Who are you?", "output": "I am Tiny, a helpful assistant."},
    {"instruction": "What is your name?", "output": "My name is Tiny."},
    {"instruction": "What can you do?", "output": "I answer short questions."},
    {"instruction": "What is the capital of France?", "output": "Paris is the capital of France."},
]
