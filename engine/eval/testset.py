"""The test rows of an evaluation, read and normalised exactly as training reads rows (engine.data.pipeline), and
each split into what the model is asked (the conversation before the last assistant reply) and what it should
answer (that reply: its text, and its tool calls where it makes some).

The test set is a dataset (`data`: any file, folder or hub dataset a run reads), or a run's own held-out rows
(`validation_of`): the run's data read with its seed, the rows training would drop left out, then the same
rows `build_splits` held out (engine.data.pipeline.validation_indices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.config_eval import EvalConfig, eval_data_problem
from engine.data import sources
from engine.data.formats import PreferenceRowsError
from engine.data.pipeline import DEFAULT_SEED, load_datasets, usable, validation_indices
from engine.data.toolcalls import call_text
from engine.jobs import rundir
from engine.jobs.failures import EngineError
from engine.sentences import said


class EvalSetError(EngineError, ValueError):
    """A test set that cannot be evaluated; the message is one sentence for the user."""


@dataclass
class EvalRow:
    """One row: the row as training reads it, and the question and answer an evaluation takes from it."""

    number: int  # 1-based, in the test set
    row: dict  # {"messages": [...], "tools"?} or {"text": ...}
    prompt: list[dict] | None = None  # the conversation the model answers; None: nothing to generate (plain text)
    reference: str = ""  # the reference reply as text (its calls written as <tool_call> blocks)
    calls: list[dict] = field(default_factory=list)  # the reference reply's tool calls

    @property
    def tools(self) -> list[dict] | None:
        return self.row.get("tools") or None


def split_row(number: int, row: dict) -> EvalRow:
    """A normalised row as a question and its reference: everything before the last assistant turn is asked."""
    messages = row.get("messages")
    if not messages or messages[-1]["role"] != "assistant" or len(messages) < 2:
        return EvalRow(number, row)
    reply = messages[-1]
    calls = list(reply.get("tool_calls") or [])
    reference = "\n".join(part for part in [reply.get("content") or "", *map(call_text, calls)] if part)
    return EvalRow(number, row, messages[:-1], reference, calls)


def load_test_rows(config: EvalConfig, log: Any = print) -> tuple[list[EvalRow], str]:
    """The evaluation's rows (max_rows first ones) and a sentence naming where they came from."""
    if config.validation_of:
        rows, where = _validation_rows(Path(config.validation_of))
    else:
        assert config.data is not None
        try:
            mixed = load_datasets(config.data, DEFAULT_SEED)
        except PreferenceRowsError as error:  # training's sentence names train.stage; an evaluation has none
            raise EvalSetError(eval_data_problem(error.name, error.shape) or error.sentence) from None
        rows, where = mixed.rows, said("engine.log.eval_file", name=config.data.name, format=mixed.format,
                                       rows=len(mixed.rows))
    if config.max_rows:
        rows = rows[: config.max_rows]
    tests = [split_row(number, row) for number, row in enumerate(rows, 1)]
    if not tests:
        raise EvalSetError(said("engine.eval.no_rows", where=where))
    asked = sum(test.prompt is not None for test in tests)
    if asked < len(tests):
        log(said("engine.log.eval_loss_only", count=len(tests) - asked, rows=len(tests)))
    return tests, where


def _validation_rows(folder: Path) -> tuple[list[dict], str]:
    from engine.data.tokens import ensure_chat_template
    from engine.model.loading import load_tokenizer

    run = rundir.RunDir(folder)
    try:
        config: RunConfig = run.read_config()
    except FileNotFoundError as error:
        raise EvalSetError(str(error)) from None
    if not config.data.val_size:
        raise EvalSetError(said("engine.eval.no_validation", run=run.name))
    if config.train.stage != "sft" and config.train.stage != "pretrain":
        raise EvalSetError(said("engine.eval.preference_run", run=run.name, stage=config.train.stage))
    weights = run.weights_dir()
    if weights is None:
        raise EvalSetError(said("engine.eval.unfinished", run=run.name))
    tokenizer = load_tokenizer(config.model.model_copy(update={"name_or_path": str(weights)}))
    ensure_chat_template(tokenizer)
    mixed = load_datasets(config.data, config.train.seed)
    cutoff, overlength = config.train.cutoff_len, config.data.overlength
    kept = [[row for number, row in enumerate(part.rows, 1)
             if usable(row, tokenizer, cutoff, overlength, part.name, number)] for part in mixed.parts]
    rows = sources.mix(kept, mixed.mix, mixed.seed)
    n_val = max(1, round(len(rows) * config.data.val_size))
    held_out = [rows[index] for index in validation_indices(len(rows), n_val, config.train.seed)]
    return held_out, said("engine.log.eval_validation_of", run=run.name, held=len(held_out), rows=len(rows),
                          name=config.data.name)
