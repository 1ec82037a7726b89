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

from engine.compare.table import COLUMNS, cell
from engine.config import METHOD_NAMES, METHOD_TITLES
from engine.config_compare import PRESETS, CompareConfig
from engine.config_read import sentence as sentence_of
from engine.errors import UserError
from webui.forms.eval_table import Heading, english

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
            raise CompareFormError(f"The preset of {method} cannot be read: give a number as its learning rate "
                                   "and its options as a JSON object, like {\"r\": 16}.") from None
        if not isinstance(parsed, dict):
            raise CompareFormError(f"The options of {method} must be a JSON object, like {{\"r\": 16}}.")
        presets[method] = {"learning_rate": rate, **parsed}
    return presets


def compare_config(model: str, dataset: str, methods: list[str], rows: Any, steps: int, batch_size: int,
                   cutoff_len: int, val_size: float, evaluate: bool = True,
                   columns: dict[str, str] | None = None) -> CompareConfig:
    """The comparison of the form's values (the dataset read with the column map `columns`); CompareFormError (one
    sentence) where they cannot make one."""
    if not methods:
        raise CompareFormError("Choose at least one method to compare.")
    if not dataset:
        raise CompareFormError("Choose a dataset: every method trains on it.")
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


def table_html(table: dict[str, Any], heading: Heading = english) -> str:
    """The comparison's table: a row per method, a column per figure, the best per column in bold with a star; its
    headings through `heading` (the visitor's language)."""
    head = "".join(f"<th>{html.escape(heading(f'table.{column.key}', column.title))}</th>" for column in COLUMNS)
    first = "".join(f"<th>{html.escape(heading(f'table.{key}', key))}</th>" for key in ("method", "state"))
    lines = [f"<p>{html.escape(table['model'])} · {html.escape(table['data'])} · {html.escape(table['budget'])}</p>",
             f"<table class='wb-eval-table wb-compare-table'><thead><tr>{first}{head}</tr></thead><tbody>"]
    for row in table["rows"]:
        cells = []
        for column in COLUMNS:
            text = html.escape(cell(row, column))
            if row["method"] in table["best"].get(column.key, ()):
                text = f"<strong class='wb-best'>{text} {BEST_MARK}</strong>"
            cells.append(f"<td>{text}</td>")
        state = html.escape(row["state"]) + (f" <span title='{html.escape(row['error'])}'>⚠</span>"
                                             if row.get("error") else "")
        lines.append(f"<tr data-method='{html.escape(row['method'])}'><td>"
                     f"{html.escape(METHOD_TITLES.get(row['method'], row['method']))}</td><td>{state}</td>"
                     f"{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


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


def estimate_html(found: dict[str, Any], say: Any, gib: Any) -> str:
    """Each method's memory estimate before Start (engine/compare/estimates.py) as a small table: estimated peak,
    verdict against the free memory, the largest part; "" where no method has one (config.json not at hand)."""
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
                     f"<td>{html.escape(gib(estimate['total_mb']))}</td>"
                     f"<td><strong>{html.escape(say(f'estimate.{verdict}'))}</strong></td>"
                     f"<td>{html.escape(estimate['largest'])}</td></tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def curves_frame(table: dict[str, Any]) -> pd.DataFrame:
    """The training loss of every method, overlaid: long format (step, loss, series) for a LinePlot."""
    rows = [(int(step), float(loss), method) for method, points in table.get("curves", {}).items()
            for step, loss in points]
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS)).astype(CURVE_COLUMNS)
