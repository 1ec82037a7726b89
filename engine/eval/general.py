"""What a tune changed elsewhere: a small built-in set of general prompts (assets/eval/general_prompts.json, English
and Chinese) answered by every model of an evaluation, each tuned model compared with the base.

Per model: the mean answer length (tokens) and the share of answers that ended their turn; per tuned model, with
the base among the models, the share of the prompts whose answer changed from the base's and the mean change in
length. These say *that* a narrow tune moved general behaviour (a tune that changes every general answer, or
makes them run to max_new_tokens, has reached beyond its data), not whether the new answers are better: no
reference answer exists for them, and greedy answers of a small model can change by a token for no reason that
matters. The answers are kept in general.jsonl for reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.config_eval import BASE
from engine.eval.metrics import changed_share
from engine.eval.testset import EvalRow

PROMPTS = Path(__file__).resolve().parents[2] / "assets" / "eval" / "general_prompts.json"


def general_rows(path: Path = PROMPTS) -> list[EvalRow]:
    """The general prompts as rows to answer (numbered from 1; no reference)."""
    items = json.loads(path.read_text(encoding="utf-8"))
    return [EvalRow(number, {"lang": item["lang"]}, [{"role": "user", "content": item["prompt"]}])
            for number, item in enumerate(items, 1)]


def compare(answers: dict[str, dict[int, Any]], rows: list[EvalRow]) -> dict[str, Any]:
    """The general figures of every model (answers: model name -> row number -> score.Answer)."""
    figures: dict[str, Any] = {"prompts": len(rows), "models": {}}
    base = answers.get(BASE)
    for name, given in answers.items():
        texts = [given[row.number].text for row in rows]
        lengths = [given[row.number].new_tokens for row in rows]
        one: dict[str, Any] = {"mean_new_tokens": sum(lengths) / len(rows),
                               "stopped_share": sum(given[row.number].stopped for row in rows) / len(rows)}
        if base is not None and name != BASE:
            one["changed_share"] = changed_share([base[row.number].text for row in rows], texts)
            one["length_change"] = one["mean_new_tokens"] - sum(base[row.number].new_tokens for row in rows) / len(rows)
        figures["models"][name] = one
    return figures


def lines(answers: dict[str, dict[int, Any]], rows: list[EvalRow]) -> list[dict[str, Any]]:
    """general.jsonl: one line a prompt with each model's answer."""
    return [{"prompt": row.prompt[0]["content"], "lang": row.row["lang"],
             "answers": {name: given[row.number].text for name, given in answers.items()}} for row in rows]


def prompt_rows(prompts: list[str]) -> list[EvalRow]:
    """An evaluation's own prompts (config.prompts) as rows to answer (numbered from 1; no reference)."""
    return [EvalRow(number, {}, [{"role": "user", "content": prompt}]) for number, prompt in enumerate(prompts, 1)]


def answer_lines(answers: dict[str, dict[int, Any]], rows: list[EvalRow]) -> list[dict[str, Any]]:
    """answers.jsonl: one line a prompt of the config's own, with each model's answer and its length in tokens."""
    return [{"prompt": row.prompt[0]["content"],
             "answers": {name: given[row.number].text for name, given in answers.items()},
             "new_tokens": {name: given[row.number].new_tokens for name, given in answers.items()}} for row in rows]
