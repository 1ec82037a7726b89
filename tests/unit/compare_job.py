"""Helpers for the unit tests of the comparison job (engine/compare/job.py) run in the test's process: its children
(each method's run and evaluation) stand in as folders written as the engine leaves them, no process started."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.compare import job as compare_job
from engine.compare.plan import write_compare_yaml
from engine.compare.table import CompareDir
from engine.config_compare import CompareConfig
from engine.config_eval import BASE
from engine.estimate import room
from engine.jobs.kinds import COMPARE
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import EvalDir, JobDir, RunDir, write_json_atomic
from tests.cli import engine_process_state_kept

Launch = Callable[[Any, JobDir, Any], int]


def run_compare(compare: CompareDir, config: CompareConfig, launch: Launch, monkeypatch: pytest.MonkeyPatch) -> int:
    """The comparison as `launch.py compare` runs it (config.yaml written, then the compare job), in this process,
    with `launch` standing in for each child engine process."""
    monkeypatch.setattr(room, "gpu_free", lambda: None)  # no nvidia-smi: no process
    monkeypatch.setattr(compare_job, "child_process", launch)
    write_compare_yaml(compare, config)
    with engine_process_state_kept():
        return run_job(COMPARE, compare.path)


def events_of(job: JobDir) -> list[dict[str, Any]]:
    return [json.loads(line) for line in job.events.read_text(encoding="utf-8").splitlines()]


def states_of(job: JobDir) -> list[tuple[str, str | None]]:
    """(state, note) of every status event the job wrote, in order."""
    return [(event["state"], event.get("note")) for event in events_of(job) if event["kind"] == "status"]


def finish_run(run: RunDir, state: str = "completed", **metrics: Any) -> None:
    """A run folder as a finished engine process leaves it."""
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_status(state, pid=None, **({"error": "it broke"} if state == "failed" else {}))
    if state == "completed":
        write_json_atomic(run.metrics, {"trainable_params": 10, "peak_memory_mb": 100.0, **metrics})


def finish_eval(job: EvalDir, exact: float, general: list[str], answer: str) -> None:
    """An evaluation folder as a completed evaluation job of one model leaves it: its figures, its answers to the
    general prompts (one per prompt, in order) and to the comparison's prompts."""
    config = job.read_config()
    name = "base" if config.models == [BASE] else Path(config.models[0]).name
    write_json_atomic(job.metrics, {"models": {name: {"source": config.models[0], "exact_match": exact,
                                                      "rouge_l": exact / 2, "bleu": 10 * exact}}})
    job.general.write_text("".join(json.dumps({"prompt": f"general {number}", "answers": {name: text}}) + "\n"
                                   for number, text in enumerate(general)), encoding="utf-8")
    job.answers.write_text("".join(json.dumps({"prompt": prompt, "answers": {name: answer}}) + "\n"
                                   for prompt in config.prompts), encoding="utf-8")
    job.write_status("completed", pid=None)
