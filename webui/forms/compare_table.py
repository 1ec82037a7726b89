"""The Compare tab's form and results, without gradio: the presets table (one row per method: its learning rate and
options, editable) to and from CompareConfig's presets, the comparison's config from the form, and the results table
(engine/compare/table.py's table.json) as HTML with the best per column marked, and its loss curves as a frame for
the plot.
"""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd
from pydantic import ValidationError

from engine.compare.table import COLUMNS, EVALUATED, Column, cell
from engine.config import METHOD_NAMES, METHOD_TITLES
from engine.config_compare import PRESETS, CompareConfig
from engine.config_read import sentence as sentence_of
from engine.errors import UserError
from engine.estimate.memory import PART_KEYS
from engine.jobs.events import STATES
from engine.sentences import said
from webui.forms.eval_table import Say, english, scrolling

BEST_MARK = "★"
PRESET_HEADERS = ["method", "learning_rate", "options"]
CURVE_COLUMNS = {"step": "int64", "loss": "float64", "series": "string"}


class CompareFormError(UserError, ValueError):
    """What the Compare form was given cannot be compared; the message is one sentence for the page."""


class CompareValueError(CompareFormError):
    """A value of the form out of its key's range (or of a wrong type): the schema's sentence naming the key."""


def preset_rows(presets: dict[str, dict[str, Any]] | None = None) -> list[list[Any]]:
    """The presets, one row per method: name, learning rate, the options as JSON; the built-in ones, each replaced
    by its settings in `presets` (a comparison's config) where it has some."""
    rows = []
    for method in METHOD_NAMES:
        settings = (presets or {}).get(method) or PRESETS[method]
        options = {key: value for key, value in settings.items() if key != "learning_rate"}
        rows.append([method, settings.get("learning_rate", PRESETS[method]["learning_rate"]), json.dumps(options)])
    return rows


def presets_from_rows(rows: Any) -> dict[str, dict[str, Any]]:
    """The presets table's rows (a DataFrame or lists) as CompareConfig.presets: every row's settings."""
    values = rows.values.tolist() if isinstance(rows, pd.DataFrame) else list(rows or [])
    presets: dict[str, dict[str, Any]] = {}
    for row in values:
        method, rate, options = (list(row) + ["", "", ""])[:3]
        method = str(method).strip()
        if not method:
            continue
        try:
            parsed = json.loads(options) if str(options).strip() else {}
            rate = float(rate)
        except (TypeError, ValueError):
            raise CompareFormError(said("engine.compare.preset_unread", method=method)) from None
        if not isinstance(parsed, dict):
            raise CompareFormError(said("engine.compare.preset_options", method=method))
        presets[method] = {"learning_rate": rate, **parsed}
    return presets


def compare_config(model: str, dataset: str, methods: list[str], rows: Any, steps: int, batch_size: int,
                   cutoff_len: int, val_size: float, evaluate: bool = True,
                   columns: dict[str, str] | None = None) -> CompareConfig:
    """The comparison of the form's values (the dataset read with the column map `columns`); CompareFormError (one
    sentence) where they cannot make one."""
    if not methods:
        raise CompareFormError(said("engine.compare.no_methods"))
    if not dataset:
        raise CompareFormError(said("engine.compare.no_dataset"))
    presets = presets_from_rows(rows)
    try:  # validated as one mapping, so a refusal names the key as the YAML spells it ('train.cutoff_len')
        config = CompareConfig.model_validate({
            "model": {"name_or_path": model}, "data": {"path": dataset, "val_size": val_size, "columns": columns or {}},
            "train": {"max_steps": int(steps), "batch_size": int(batch_size), "cutoff_len": int(cutoff_len),
                      "save_steps": max(1, int(steps) // 2), "report_to": []},
            "methods": [m for m in METHOD_NAMES if m in methods],
            "presets": {m: presets[m] for m in methods if m in presets}, "evaluate": bool(evaluate)})
    except ValidationError as error:
        raise CompareValueError(sentence_of(error.errors()[0])) from None
    issues = config.problems()
    if issues:
        raise CompareFormError(issues[0])
    return config


def budget_line(table: dict[str, Any], say: Say) -> str:
    """The line above the table: the model, the dataset and the one budget, in the visitor's language (a table.json
    written before `budget_of`: its English budget)."""
    values = table.get("budget_of")
    if isinstance(values, dict) and values.get("steps"):
        budget = say("compare.budget_steps", n=values["steps"], **_budget(values))
    elif isinstance(values, dict) and values.get("epochs"):
        budget = say("compare.budget_epochs", epochs=f"{values['epochs']:g}", **_budget(values))
    else:
        budget = table["budget"]
    return f"<p>{html.escape(table['model'])} · {html.escape(table['data'])} · {html.escape(budget)}</p>"


def _budget(values: dict[str, Any]) -> dict[str, Any]:
    return {"batch_size": values["batch_size"], "accumulation": values["accumulation"],
            "cutoff_len": values["cutoff_len"], "val_size": f"{values['val_size']:g}", "seed": values["seed"]}


def state_words(state: str, say: Say) -> str:
    """A method's state in the visitor's language ("not started": its run has no status yet)."""
    if state in STATES:
        return say(f"state.{state}")
    return say("compare.not_started") if state == "not started" else state


def figure(row: dict[str, Any], column: Column, say: Say) -> str:
    """A cell's text: the number as table.md writes it, whether the method merges in the visitor's language."""
    if column.key == "merges":
        return say("compare.merges_yes" if row.get("merges") else "compare.merges_no")
    return cell(row, column)


def table_html(table: dict[str, Any], say: Say = english) -> str:
    """The comparison's table: the budget above it, a row per method, a column per figure, the best per column in
    bold with a star, in a box that scrolls sideways; under it the base's figures on the same rows and what the
    estimated peak is; every word through `say` (the visitor's language)."""
    head = "".join(f"<th>{html.escape(say(f'table.{column.key}'))}</th>" for column in COLUMNS)
    first = "".join(f"<th>{html.escape(say(f'table.{key}'))}</th>" for key in ("method", "state"))
    lines = [f"<table class='wb-eval-table wb-compare-table'><thead><tr>{first}{head}</tr></thead><tbody>"]
    for row in table["rows"]:
        cells = []
        for column in COLUMNS:
            text = html.escape(figure(row, column, say))
            if row["method"] in table["best"].get(column.key, ()):
                text = f"<strong class='wb-best'>{text} {BEST_MARK}</strong>"
            cells.append(f"<td>{text}</td>")
        state = html.escape(state_words(row["state"], say)) + (
            f" <span title='{html.escape(row['error'])}'>⚠</span>" if row.get("error") else "")
        lines.append(f"<tr data-method='{html.escape(row['method'])}'><td>"
                     f"{html.escape(METHOD_TITLES.get(row['method'], row['method']))}</td><td>{state}</td>"
                     f"{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return budget_line(table, say) + scrolling("".join(lines)) + base_note(table, say) + estimate_note(table, say)


def base_note(table: dict[str, Any], say: Say) -> str:
    """The base model's exact match, ROUGE-L and BLEU on the same held-out rows (its evaluation, evals/base), as
    table.md states them; "" before the base is evaluated or where the comparison does not evaluate."""
    base = table.get("base") or {}
    if base.get("error"):
        unreadable = say("compare.base_unreadable", error=base["error"])
        return f"<p class='wb-error wb-compare-base'>{html.escape(unreadable)}</p>"
    figures = say("compare.figure_separator").join(f"{say(f'table.{column.key}')} {cell(base, column)}"
                                                   for column in EVALUATED if base.get(column.key) is not None)
    if not figures:
        return ""
    return f"<p class='wb-compare-base'>{html.escape(say('compare.base_figures', figures=figures))}</p>"


def estimate_note(table: dict[str, Any], say: Say) -> str:
    """What the estimated peak is (from what, for which memory, how much was free), or why there is none."""
    estimate = table.get("estimate") or {}
    if estimate.get("error"):
        none = say("compare.estimate_none", error=estimate["error"])
        return f"<p class='wb-compare-estimate-note'>{html.escape(none)}</p>"
    if not estimate.get("device"):
        return ""
    rows = estimate.get("lengths")
    basis = (say("compare.estimate_basis_rows", rows=rows["rows"], longest=rows["longest"]) if rows
             else say("compare.estimate_basis_cutoff"))
    device = say("compare.estimate_device_gpu" if estimate["device"] == "gpu" else "compare.estimate_device_cpu")
    note = say("compare.estimate_note", basis=basis, device=device, free=f"{estimate['free_mb'] / 1024:.2f} GiB")
    return f"<p class='wb-compare-estimate-note'>{html.escape(note)}</p>"


def answers_html(table: dict[str, Any], heading: str) -> str:
    """Each method's answer to the comparison's prompts (table.json's `answers`), the base's first; "" where none
    has answered yet."""
    items = [item for item in table.get("answers") or [] if item.get("answers")]
    if not items:
        return ""
    order = ["base", *(row["method"] for row in table["rows"])]
    lines = [f"<p>{html.escape(heading)}</p>"]
    for item in items:
        lines.append(f"<p><strong>{html.escape(item['prompt'])}</strong></p><table class='wb-eval-table "
                     "wb-compare-answers'><tbody>")
        for model in order:
            if model in item["answers"]:
                title = html.escape(METHOD_TITLES.get(model, model))
                lines.append(f"<tr data-model='{html.escape(model)}'><td>{title}</td>"
                             f"<td>{html.escape(item['answers'][model])}</td></tr>")
        lines.append("</tbody></table>")
    return "".join(lines)


def memory_size(mib: float) -> str:
    """A method's memory figure as the table's columns count it: MiB under a GiB (the table's 586 is this 586 MiB),
    else GiB."""
    return f"{mib:.0f} MiB" if mib < 1024 else f"{mib / 1024:.2f} GiB"


def part_words(largest: str, say: Say) -> str:
    """The largest part of an estimate ("activations") in the visitor's language (its run-log key)."""
    key = PART_KEYS.get(f"the {largest}")
    return say(key) if key else largest


def estimate_html(found: dict[str, Any], say: Any, gib: Any) -> str:
    """Each method's memory estimate before Start (engine/compare/estimates.py) as a small table: estimated peak
    (MiB or GiB, as the results table counts it), verdict against the free memory (`gib`), the largest part; ""
    where no method has one (config.json not at hand)."""
    if not any(found["methods"].values()):
        return ""
    head = say("compare.msg.estimate", device=say(f"estimate.{found['device']}"), free=gib(found["free_mb"]))
    if found.get("lengths"):
        head += " " + say("msg.estimate_rows", rows=found["lengths"]["rows"], longest=found["lengths"]["longest"])
    lines = [f"<p>{html.escape(head)}</p><table class='wb-eval-table wb-compare-estimate'><tbody>"]
    for method, estimate in found["methods"].items():
        title = html.escape(METHOD_TITLES.get(method, method))
        if estimate is None:
            lines.append(f"<tr data-method='{html.escape(method)}'><td>{title}</td><td>-</td><td></td><td></td></tr>")
            continue
        verdict = estimate["verdict"]
        lines.append(f"<tr data-method='{html.escape(method)}' data-verdict='{html.escape(verdict)}'><td>{title}</td>"
                     f"<td>{html.escape(memory_size(estimate['total_mb']))}</td>"
                     f"<td><strong>{html.escape(say(f'estimate.{verdict}'))}</strong></td>"
                     f"<td>{html.escape(part_words(estimate['largest'], say))}</td></tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def curves_frame(table: dict[str, Any]) -> pd.DataFrame:
    """The training loss of every method, overlaid: long format (step, loss, series) for a LinePlot."""
    rows = [(int(step), float(loss), method) for method, points in table.get("curves", {}).items()
            for step, loss in points]
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS)).astype(CURVE_COLUMNS)
