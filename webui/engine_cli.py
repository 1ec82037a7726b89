"""Short engine commands the page runs and waits for (`inspect-data`, `plan`): one JSON object back,
or the engine's one-sentence error. Each runs in its own process so the web server never loads torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


class EngineError(RuntimeError):
    """An engine command failed; str(error) is the engine's one-sentence reason."""


def engine_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def last_sentence(stderr: str) -> str:
    """The engine prints its reason as the last non-empty stderr line (tracebacks come before it)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "the engine exited without saying why."


def run_json(args: list[str], timeout: float = 180.0) -> dict[str, Any]:
    """Run `python -m engine ARGS` and return the JSON object it prints; raise EngineError otherwise."""
    try:
        done = subprocess.run(
            engine_argv(*args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise EngineError(f"`engine {args[0]}` took longer than {timeout:.0f} s and was stopped.") from None
    if done.returncode != 0:
        raise EngineError(last_sentence(done.stderr))
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise EngineError(f"`engine {args[0]}` printed no result.")
    return json.loads(lines[-1])


def inspect_data(path: Path, *, data_format: str = "auto", model: str | None = None,
                 cutoff_len: int | None = None, overlength: str | None = None) -> dict[str, Any]:
    """Format, rows, preview, one rendered example with its trained spans, token lengths."""
    args = ["inspect-data", "--data", str(path)]
    if data_format and data_format != "auto":
        args += ["--format", data_format]
    if model:
        args += ["--model", model]
    if cutoff_len:
        args += ["--cutoff-len", str(int(cutoff_len))]
    if overlength:
        args += ["--overlength", overlength]
    return run_json(args)


def plan(config_path: Path) -> dict[str, Any]:
    """Trainable and total parameter counts of a config, without training."""
    return run_json(["plan", str(config_path)])
