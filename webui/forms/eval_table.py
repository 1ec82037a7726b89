"""The Evaluate tab's results as the page shows them, from an evaluation's own files (engine/eval/job.py writes
them): the table of metrics.json (one row per model, one column per figure, the best per column marked), its CSV,
and the row-by-row view of predictions.jsonl (prompt, reference, each model's answer), with the filter that keeps
the rows where a tuned model answered otherwise than the base. Plain Python: no gradio, testable on files written
by hand.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.config_eval import BASE
from engine.sentences import ENGLISH
from webui.jobs.commands import REPO_ROOT

BEST_MARK = "★"
Say = Callable[..., str]  # say(locale key, **values): the page's words in the visitor's language (webui.i18n.Words)


@lru_cache(maxsize=1)
def _english_locale() -> dict[str, str]:
    return json.loads((REPO_ROOT / "assets" / "locales" / "en.json").read_text(encoding="utf-8"))


def english(key: str, **values: Any) -> str:
    """The Say of callers without a visitor (a script, a test): the page's English words, the engine's sentences'
    own (KEY.one where the count `n` is 1, as webui.i18n.message)."""
    table = _english_locale()
    text = (table.get(f"{key}.one") if values.get("n") == 1 else None) or table.get(key) or ENGLISH[key]
    return text.format(**values)


def scrolling(table: str) -> str:
    """A results table in a box of its own that scrolls sideways, so a wide table never runs off the page (its
    headings are kept whole: the page's CSS, .wb-table-scroll th)."""
    return f"<div class='wb-scroll wb-table-scroll'>{table}</div>"


def model_names(metrics: dict[str, Any]) -> list[str]:
    """The evaluated models in the order the evaluation named them (metrics.json's `order`; metrics.json's own keys
    are sorted), else base first and the others as the file holds them (an evaluation written before `order`)."""
    models = list(metrics.get("models") or {})
    order = [name for name in metrics.get("order") or () if name in models]
    if not order:
        order = [name for name in models if name == BASE]
    return order + [name for name in models if name not in order]


@dataclass(frozen=True)
class Column:
    key: str  # the figure's path in a model's entry of metrics.json: "loss", "tool_calls.name_accuracy"
    title: str
    fmt: str
    better: int  # +1: higher is better, -1: lower is better, 0: neither (not marked)


COLUMNS = (
    Column("loss", "loss", "{:.4f}", -1),
    Column("perplexity", "ppl", "{:.3f}", -1),
    Column("exact_match", "exact match", "{:.3f}", +1),
    Column("rouge_l", "ROUGE-L", "{:.3f}", +1),
    Column("bleu", "BLEU", "{:.2f}", +1),
    Column("mean_new_tokens", "mean tokens", "{:.1f}", 0),  # longer is not better, nor shorter
    Column("stopped_share", "stopped", "{:.3f}", +1),  # the share that ended at the end-of-turn token
    Column("judge", "judge (1-10)", "{:.2f}", +1),  # the judge's mean score, where eval.judge is set
)
# Present only when the test set has tool-call rows (metrics.json's tool_calls).
CALL_COLUMNS = (
    Column("tool_calls.valid_json", "valid JSON", "{:.3f}", +1),
    Column("tool_calls.invalid_json", "invalid JSON", "{:d}", -1),
    Column("tool_calls.name_accuracy", "tool name", "{:.3f}", +1),
    Column("tool_calls.arguments_exact", "arguments", "{:.3f}", +1),
    Column("tool_calls.argument_keys", "argument keys", "{:.3f}", +1),
    Column("tool_calls.call_precision", "call precision", "{:.3f}", +1),
    Column("tool_calls.call_recall", "call recall", "{:.3f}", +1),
    Column("tool_calls.no_call_precision", "no-call precision", "{:.3f}", +1),
    Column("tool_calls.no_call_recall", "no-call recall", "{:.3f}", +1),
)
# The general prompts (metrics.json's general): how much a tuned model's answers changed from the base's.
GENERAL_COLUMNS = (
    Column("general.changed_share", "general changed", "{:.3f}", -1),  # less change: less damage elsewhere
    Column("general.length_change", "general length change", "{:+.1f}", 0),
    Column("general.judge", "general judge", "{:.2f}", +1),
)
# The per-tool table (metrics.json's tool_calls.per_tool): a row per tool and model.
TOOL_COLUMNS = (
    Column("rows", "rows", "{:d}", 0),
    Column("name_accuracy", "tool name", "{:.3f}", +1),
    Column("arguments_exact", "arguments", "{:.3f}", +1),
    Column("argument_keys", "argument keys", "{:.3f}", +1),
)


def value(metrics: dict[str, Any], model: str, key: str) -> Any:
    """A model's figure (None where it has none): general.* from metrics.json's general section, else its entry."""
    section, _, name = key.rpartition(".")
    if section == "general":
        source = ((metrics.get("general") or {}).get("models") or {}).get(model) or {}
    else:
        source = (metrics.get("models") or {}).get(model) or {}
        source = source.get(section) or {} if section else source
    found = source.get(name) if isinstance(source, dict) else None
    return found if isinstance(found, int | float) and not isinstance(found, bool) else None


def columns(metrics: dict[str, Any]) -> list[Column]:
    """The columns an evaluation has a figure in (a plain-text test set has only the loss)."""
    models = list(metrics.get("models") or {})
    every = (*COLUMNS, *CALL_COLUMNS, *GENERAL_COLUMNS)
    return [column for column in every if any(value(metrics, model, column.key) is not None for model in models)]


def best(metrics: dict[str, Any], column: Column) -> set[str]:
    """The models with the best value of a column (all of them where some tie for it); none for a column without
    a direction, with a single model's value, or where every model has the same value (nothing is better)."""
    values = {model: value(metrics, model, column.key) for model in metrics.get("models") or {}}
    values = {model: figure for model, figure in values.items() if figure is not None}
    if not column.better or len(set(values.values())) < 2:
        return set()
    top = (max if column.better > 0 else min)(values.values())
    return {model for model, figure in values.items() if figure == top}


def cell(figure: Any, fmt: str) -> str:
    return "–" if figure is None else fmt.format(figure)


def table_html(metrics: dict[str, Any], say: Say = english) -> str:
    """The metrics table: a row per model (in the evaluation's order), a column per figure, the best per column in
    bold with a star; its headings through `say` (the visitor's language); in a box that scrolls sideways."""
    shown = columns(metrics)
    marked = {column.key: best(metrics, column) for column in shown}
    head = "".join(f"<th>{html.escape(say(f'table.{column.key}'))}</th>" for column in shown)
    lines = [f"<table class='wb-eval-table'><thead><tr><th>{html.escape(say('table.model'))}</th>"
             f"{head}</tr></thead><tbody>"]
    for model in model_names(metrics):
        cells = []
        for column in shown:
            text = html.escape(cell(value(metrics, model, column.key), column.fmt))
            if model in marked[column.key]:
                text = f"<strong class='wb-best'>{text} {BEST_MARK}</strong>"
            cells.append(f"<td>{text}</td>")
        lines.append(f"<tr><td>{html.escape(model)}</td>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return scrolling("".join(lines))


def table_csv(metrics: dict[str, Any]) -> str:
    """The table as CSV: the figures unrounded, and a last column naming the columns where the model is best."""
    shown = columns(metrics)
    marked = {column.key: best(metrics, column) for column in shown}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", *(column.key for column in shown), "best_in"])
    for model in model_names(metrics):
        figures = [value(metrics, model, column.key) for column in shown]
        best_in = " ".join(column.key for column in shown if model in marked[column.key])
        writer.writerow([model, *("" if figure is None else figure for figure in figures), best_in])
    return out.getvalue()


def per_tool(metrics: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """tool -> model -> its figures on the rows whose reference calls that tool."""
    tools: dict[str, dict[str, dict[str, Any]]] = {}
    for model, entry in (metrics.get("models") or {}).items():
        for tool, figures in (((entry or {}).get("tool_calls") or {}).get("per_tool") or {}).items():
            tools.setdefault(tool, {})[model] = figures if isinstance(figures, dict) else {}
    return tools


def tools_html(metrics: dict[str, Any], say: Say = english) -> str:
    """The per-tool table: a row per tool and model, the best model per tool and column marked; empty without
    tool-call rows."""
    tools = per_tool(metrics)
    if not tools:
        return ""
    head = "".join(f"<th>{html.escape(say(f'table.{column.key}'))}</th>" for column in TOOL_COLUMNS)
    lines = [f"<table class='wb-eval-tools'><thead><tr><th>{html.escape(say('table.tool'))}</th>"
             f"<th>{html.escape(say('table.model'))}</th>{head}</tr></thead><tbody>"]
    for tool, models in sorted(tools.items()):
        one = {"models": models}
        for model in models:
            cells = []
            for column in TOOL_COLUMNS:
                text = html.escape(cell(value(one, model, column.key), column.fmt))
                if model in best(one, column):
                    text = f"<strong class='wb-best'>{text} {BEST_MARK}</strong>"
                cells.append(f"<td>{text}</td>")
            lines.append(f"<tr><td>{html.escape(tool)}</td><td>{html.escape(model)}</td>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return scrolling("".join(lines))


def judge_note(metrics: dict[str, Any], say: Say = english) -> str:
    """A line under the table on the judge: the sentence that ended it early, or how many replies failed."""
    section = metrics.get("judge")
    if not isinstance(section, dict):
        return ""
    parts = [section] + ([section["general"]] if isinstance(section.get("general"), dict) else [])
    error = next((part["error"] for part in parts if part.get("error")), None)
    if error:
        return f"<p class='wb-error'>{html.escape(say('eval.judge_stopped', error=str(error)))}</p>"
    failed = sum(int(part.get("failed") or 0) for part in parts)
    asked = sum(int(part.get("rows") or 0) for part in parts)
    judge = str(section.get("model"))
    if failed:
        return f"<p>{html.escape(say('eval.judge_failed', judge=judge, failed=failed, asked=asked))}</p>"
    return f"<p>{html.escape(say('eval.judge_read', judge=judge, asked=asked))}</p>"


def results_html(metrics: dict[str, Any], say: Say = english) -> str:
    """What the tab shows of metrics.json: the table, the judge's note and the per-tool table."""
    return table_html(metrics, say) + judge_note(metrics, say) + tools_html(metrics, say)


# ---------------------------------------------------------------------------------------------------- rows


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """predictions.jsonl's lines (ValueError, with the line number, for one that is not a JSON object)."""
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text.strip():
            line = json.loads(text)
            if not isinstance(line, dict):
                raise ValueError(f"{path.name} line {number} is not a JSON object.")
            lines.append(line)
    return lines


def prompt_text(prompt: Any) -> str:
    """The conversation a row asked, as text: the last user turn alone, the earlier turns named when there are
    more (a system prompt, earlier exchanges)."""
    if isinstance(prompt, str) or prompt is None:
        return prompt or ""
    turns = [turn for turn in prompt if isinstance(turn, dict)]
    if len(turns) == 1:
        return str(turns[0].get("content") or "")
    return "\n".join(f"{turn.get('role')}: {turn.get('content') or ''}" for turn in turns)


def differs(line: dict[str, Any]) -> bool:
    """Whether a tuned model answered this row otherwise than the base (stripped text)."""
    answers = line.get("answers") or {}
    if BASE not in answers:
        return False
    return any(str(text).strip() != str(answers[BASE]).strip() for name, text in answers.items() if name != BASE)


def gap(line: dict[str, Any]) -> float:
    """How far a tuned model's ROUGE-L on the row is from the base's, the largest over the tuned models."""
    scores = line.get("scores") or {}
    base = (scores.get(BASE) or {}).get("rouge_l") or 0.0
    return max([abs(((one or {}).get("rouge_l") or 0.0) - base) for name, one in scores.items() if name != BASE],
               default=0.0)


def row_view(lines: list[dict[str, Any]], models: list[str], only_differ: bool = False,
             limit: int = 200, say: Say = english) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the row-by-row view: row, prompt, reference (headed through `say`: the visitor's
    language), each model's answer. `only_differ` keeps the rows where a tuned model's answer is not the base's,
    those that differ most (ROUGE-L) first."""
    chosen = [line for line in lines if differs(line)] if only_differ else list(lines)
    if only_differ:
        chosen.sort(key=lambda line: -gap(line))
    headers = [say("table.row"), say("table.prompt"), say("table.reference"), *models]
    rows = [[line.get("row"), prompt_text(line.get("prompt")), line.get("reference") or "",
             *((line.get("answers") or {}).get(model, "") for model in models)] for line in chosen[:limit]]
    return headers, rows
