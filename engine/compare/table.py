"""The comparison's table: one row per method, read from each run's own outputs (never recomputed).

Plain Python: the web process imports this module (it reads JSON files, loads no model). A comparison's folder
(engine.config_compare) holds compare.yaml and, written here, table.json (rows, the best per column, the loss
curves), table.csv and table.md. Each row is read from its run folder: metrics.json (trainable parameters and %,
weights size on disk, peak memory, tokens/s, wall time, final train loss, eval loss and perplexity on the
held-out rows), status.json (the run's state) and events.jsonl (the loss curve); whether the method merges into
the base is the method's fact (engine.config.MERGEABLE). The estimated peak is what the comparison's estimate.json
said before Start (engine/compare/estimates.py), beside the measured peak with the estimate's error. Where the
comparison evaluates (config.evaluate), each method's evaluation job (COMPARE/evals/METHOD, engine/eval) gives
exact match, ROUGE-L and BLEU on the same held-out rows and the answers to the comparison's prompts (table.json's
`answers`, shown under the table); the base's evaluation (COMPARE/evals/base, once) gives the base's figures, and
its general answers against the method's give the share of the general prompts whose answer changed
(engine.eval.metrics.changed_share, as an evaluation of both would compute it).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compare.estimates import read_estimates
from engine.config import MERGEABLE, METHOD_TITLES
from engine.config_compare import CompareConfig, run_name
from engine.config_eval import BASE
from engine.eval.metrics import changed_share
from engine.jobs.rundir import CompareJobDir, EvalDir, RunDir, read_json, write_json_atomic

EVALS = "evals"  # COMPARE/evals/METHOD: each method's evaluation job
TABLE_JSON, TABLE_CSV, TABLE_MD = "table.json", "table.csv", "table.md"


@dataclass(frozen=True)
class Column:
    key: str  # the row's key
    title: str  # the table's heading
    metric: str | None  # the run's metrics.json key it is read from (None: not a figure of the run's)
    fmt: str = "{}"
    better: str | None = None  # "low" or "high": the best is marked; None: not ranked
    evaluated: str | None = None  # the method's metrics.json key in its evaluation (COMPARE/evals/METHOD)


COLUMNS = (
    Column("trainable_params", "trainable params", "trainable_params", "{:,}", "low"),
    Column("trainable_percent", "trainable %", "trainable_percent", "{:.4f}"),
    Column("weights_mb", "size on disk MiB", "weights_size_mb", "{:.2f}", "low"),
    Column("peak_memory_mb", "peak memory MiB", "peak_memory_mb", "{:.0f}", "low"),
    Column("estimated_peak_mb", "estimated peak MiB", None, "{:.0f}"),  # before Start (estimate.json)
    Column("estimate_error_percent", "estimate error %", None, "{:+.0f}"),  # (estimated - measured) / measured
    Column("tokens_per_s", "tokens/s", "tokens_per_s", "{:.0f}", "high"),
    Column("wall_s", "wall s", "wall_s", "{:.1f}", "low"),
    Column("final_loss", "final train loss", "final_loss", "{:.4f}", "low"),
    Column("eval_loss", "eval loss", "eval_loss", "{:.4f}", "low"),
    Column("eval_perplexity", "eval perplexity", "eval_perplexity", "{:.3f}", "low"),
    Column("exact_match", "exact match", None, "{:.3f}", "high", "exact_match"),
    Column("rouge_l", "ROUGE-L", None, "{:.3f}", "high", "rouge_l"),
    Column("bleu", "BLEU", None, "{:.2f}", "high", "bleu"),
    Column("general_changed", "general answers changed", None, "{:.2f}", "low", "changed_share"),
    Column("merges", "merges into base", None),
)
RANKED = tuple(column for column in COLUMNS if column.better)
EVALUATED = tuple(column for column in COLUMNS if column.evaluated)


@dataclass(frozen=True)
class CompareDir(CompareJobDir):
    """A comparison's folder: the job's config.yaml, status and events, the table files and evals/; its runs live in
    `runs_dir`."""

    table_json = property(lambda self: self.path / TABLE_JSON)
    table_csv = property(lambda self: self.path / TABLE_CSV)
    table_md = property(lambda self: self.path / TABLE_MD)

    @property
    def name(self) -> str:
        return self.path.name

    def read_config(self) -> CompareConfig:
        """config.yaml as written by the command line or the page (paths already absolute)."""
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.path} is not a comparison folder: it has no {self.config.name}.")
        return CompareConfig.model_validate(self.read_raw_config())

    def runs_dir(self, config: CompareConfig) -> Path:
        return Path(config.runs_dir) if config.runs_dir else self.path.parent.parent / "runs"

    def run(self, config: CompareConfig, method: str) -> RunDir:
        return RunDir(self.runs_dir(config) / run_name(self.name, method))

    def evaluation(self, method: str) -> EvalDir:
        return EvalDir(self.path / EVALS / method)


def loss_curve(run: RunDir) -> list[tuple[int, float]]:
    """(step, loss) of every logged training step, from the run's events.jsonl."""
    points = []
    if not run.events.is_file():
        return points
    for line in run.events.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed writer
        values = event.get("values") if isinstance(event, dict) and event.get("kind") == "metrics" else None
        if isinstance(values, dict) and isinstance(values.get("loss"), (int, float)):
            points.append((int(event.get("step", len(points) + 1)), float(values["loss"])))
    return points


def method_row(run: RunDir, method: str) -> dict[str, Any]:
    """One method's row from its run folder; figures the run has not written yet are None."""
    status = run.read_status()
    row: dict[str, Any] = {"method": method, "title": METHOD_TITLES.get(method, method), "run": str(run.path),
                           "state": status.get("state", "not started"), "error": status.get("error")}
    try:
        metrics = read_json(run.metrics) if status.get("state") == "completed" else {}
    except ValueError as error:  # a damaged metrics.json: said in the row, not guessed
        metrics, row["error"] = {}, str(error)
    for column in COLUMNS:
        if column.metric:
            value = metrics.get(column.metric) if isinstance(metrics, dict) else None
            row[column.key] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    row["merges"] = method in MERGEABLE
    return row


def best_per_column(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """column key -> the methods with its best value (ties: all of them; none where every value is the same)."""
    best = {}
    for column in RANKED:
        values = {row["method"]: row[column.key] for row in rows if row.get(column.key) is not None}
        if len(set(values.values())) < 2:
            continue
        pick = min if column.better == "low" else max
        top = pick(values.values())
        best[column.key] = [method for method, value in values.items() if value == top]
    return best


def add_estimates(rows: list[dict[str, Any]], compare: CompareDir) -> dict[str, Any]:
    """Each row's estimated peak (MiB, as the measured peak) and the estimate's error against the measured one,
    from estimate.json; the estimate's device and free memory, or {"error": sentence} where the file is damaged."""
    try:
        found = read_estimates(compare.path)
    except ValueError as error:
        found = {"error": str(error)}
    methods = found.get("methods") or {}
    for row in rows:
        estimate = methods.get(row["method"])
        estimated = estimate.get("total_mb") if isinstance(estimate, dict) else None
        row["estimated_peak_mb"] = estimated if isinstance(estimated, (int, float)) else None
        row["estimate_verdict"] = estimate.get("verdict") if isinstance(estimate, dict) else None
        measured = row.get("peak_memory_mb")
        row["estimate_error_percent"] = (100 * (row["estimated_peak_mb"] - measured) / measured
                                         if row["estimated_peak_mb"] is not None and measured else None)
    return {key: value for key, value in found.items() if key != "methods"}


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file's objects ([] where there is none); ValueError naming the file where a line is damaged."""
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError:
        raise ValueError(f"{path.name} cannot be read: a line is not JSON.") from None


def evaluation(job: EvalDir) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A completed evaluation of one model (a method's run, or the base): its figures in metrics.json, its answers
    to the general prompts and to the comparison's prompts (prompt -> text); ValueError naming a damaged file."""
    metrics = read_json(job.metrics)
    models = metrics.get("models") if isinstance(metrics, dict) else None
    if not isinstance(models, dict) or len(models) != 1:
        raise ValueError(f"{job.metrics.name} of {job.path} is not the evaluation of one model a comparison writes.")
    (name, figures), = models.items()

    def answers(path: Path) -> dict[str, str]:
        return {str(line.get("prompt")): str((line.get("answers") or {}).get(name, "")) for line in _jsonl(path)}

    return figures, answers(job.general), answers(job.answers)


def _figures(found: dict[str, Any], general: dict[str, str] | None, base_general: dict[str, str] | None) -> dict:
    """The evaluation columns of one model; general_changed: engine/eval's changed share of its general answers
    against the base's (None for the base itself, or before the base's evaluation completed)."""
    row = {column.key: _number(found.get(column.evaluated)) for column in EVALUATED if column.key != "general_changed"}
    if general is not None and base_general and set(general) == set(base_general):
        prompts = sorted(general)
        row["general_changed"] = changed_share([base_general[p] for p in prompts], [general[p] for p in prompts])
    return row


def add_evaluations(rows: list[dict[str, Any]], compare: CompareDir, config: CompareConfig) -> dict[str, Any]:
    """Each completed row's evaluation figures (None until its evaluation completed), the base's figures (from
    evals/base) and every answer to the prompts: {"base": {...}, "answers": [{"prompt", "answers": {model: text}}]}.
    A damaged evaluation is said in its row's error, not guessed."""
    answers: dict[str, dict[str, str]] = {prompt: {} for prompt in config.prompts} if config.evaluate else {}
    base, base_general = {}, None
    if compare.evaluation(BASE).metrics.is_file():
        try:
            found, base_general, said = evaluation(compare.evaluation(BASE))
            base = _figures(found, None, None)
            for prompt, text in said.items():
                answers.setdefault(prompt, {})[BASE] = text
        except ValueError as error:
            base = {"error": str(error)}
    for row in rows:
        job = compare.evaluation(row["method"])
        row.update(dict.fromkeys((column.key for column in EVALUATED), None))
        row["evaluation"] = str(job.path) if row["state"] == "completed" and job.metrics.is_file() else None
        if row["evaluation"] is None:
            continue
        try:
            found, general, said = evaluation(job)
        except ValueError as error:
            row["error"] = row["error"] or str(error)
            continue
        row.update(_figures(found, general, base_general))
        for prompt, text in said.items():
            answers.setdefault(prompt, {})[row["method"]] = text
    return {"base": base, "answers": [{"prompt": prompt, "answers": given} for prompt, given in answers.items()]}


def build_table(compare: CompareDir, config: CompareConfig) -> dict[str, Any]:
    rows = [method_row(compare.run(config, method), method) for method in config.methods]
    estimate = add_estimates(rows, compare)
    evaluated = add_evaluations(rows, compare, config)
    curves = {method: loss_curve(compare.run(config, method)) for method in config.methods}
    done = sum(row["state"] == "completed" for row in rows)
    return {"comparison": compare.name, "model": config.model.name_or_path, "data": config.data.name,
            "budget": budget(config), "budget_of": budget_values(config),
            "columns": [column.key for column in COLUMNS], "rows": rows,
            "best": best_per_column(rows), "curves": curves, "completed": done, "methods": len(rows),
            "estimate": estimate, "evaluate": config.evaluate, **evaluated}


def budget_values(config: CompareConfig) -> dict[str, Any]:
    """The one budget every method trains with, as values (the page words them in the visitor's language)."""
    t = config.train
    return {"steps": t.max_steps or None, "epochs": None if t.max_steps else t.epochs, "batch_size": t.batch_size,
            "accumulation": t.gradient_accumulation_steps, "cutoff_len": t.cutoff_len,
            "val_size": config.data.val_size, "seed": t.seed}


def budget(config: CompareConfig) -> str:
    """The budget in English (table.md and the terminal)."""
    b = budget_values(config)
    steps = f"{b['steps']} step{'s' * (b['steps'] != 1)}" if b["steps"] else f"{b['epochs']:g} epochs"
    return (f"{steps} of {b['batch_size']} x {b['accumulation']} rows, cutoff {b['cutoff_len']}, "
            f"{b['val_size']:g} held out, seed {b['seed']}")


def cell(row: dict[str, Any], column: Column, best: dict[str, list[str]] | None = None) -> str:
    value = row.get(column.key)
    if column.key == "merges":
        return "yes" if value else "no"
    text = "-" if value is None else column.fmt.format(value)
    return f"{text} *" if best and row["method"] in best.get(column.key, ()) else text


def markdown(table: dict[str, Any]) -> str:
    """The table as Markdown; * marks the best value of a column."""
    head = ["method", "state", *(column.title for column in COLUMNS)]
    lines = [f"Comparison {table['comparison']}: {table['model']} on {table['data']}, {table['budget']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [row["title"], row["state"], *(cell(row, column, table["best"]) for column in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "\\* best of the column."]
    lines += estimate_note(table)
    lines += evaluation_note(table)
    return "\n".join(lines) + "\n"


def evaluation_note(table: dict[str, Any]) -> list[str]:
    """What the evaluation columns are, the base's figures on the same rows, and the answers to the prompts."""
    if not table.get("evaluate"):
        return ["", "Not evaluated (evaluate: false): no exact match, ROUGE-L, BLEU, general change or answers."]
    base = table.get("base") or {}
    said = ", ".join(f"{column.title} {cell(base, column)}" for column in EVALUATED if column.key in base)
    lines = ["", "Exact match, ROUGE-L and BLEU: greedy answers to the same held-out rows (engine/eval); general "
                 "answers changed: the share of the general prompts whose answer differs from the base's."
             + (f" The base model on those rows: {said}." if said else "")]
    for item in table.get("answers") or []:
        lines += ["", f"**{item['prompt']}**", ""]
        lines += [f"- {model}: {' '.join(text.split()) or '(empty)'}" for model, text in item["answers"].items()]
    return lines


def estimate_note(table: dict[str, Any]) -> list[str]:
    """A sentence on what the estimated peak is (and its device), or why there is none."""
    estimate = table.get("estimate") or {}
    if estimate.get("error"):
        return ["", f"No estimated peak: {estimate['error']}"]
    if not estimate.get("device"):
        return []
    device = "GPU memory (max allocated)" if estimate["device"] == "gpu" else "RAM (the process's peak RSS)"
    rows = estimate.get("lengths")
    basis = (f"config.json and the largest batch of the data's {rows['rows']} measured rows (the longest "
             f"{rows['longest']} tokens)" if rows else "config.json alone, rows of cutoff_len tokens")
    return ["", f"Estimated peak: engine.estimate's figure before Start, from {basis}, for {device} "
                f"({estimate['free_mb'] / 1024:.2f} GiB free then); estimate error: (estimated - measured) / measured."]


def csv_text(table: dict[str, Any]) -> str:
    """The table as CSV: raw values (no marks), one row per method."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["method", "state", *(column.key for column in COLUMNS)])
    for row in table["rows"]:
        writer.writerow([row["method"], row["state"], *("" if row.get(c.key) is None else row[c.key]
                                                       for c in COLUMNS)])
    return out.getvalue()


def text_lines(table: dict[str, Any]) -> list[str]:
    """The table for a terminal: one line per method, * on the best of each column."""
    short = ("params", "%", "MiB disk", "peak MiB", "est. MiB", "est. err %", "tok/s", "wall s", "loss", "eval", "ppl",
             "exact", "ROUGE-L", "BLEU", "gen. chg", "merges")
    width = max(len("method"), *(len(row["method"]) for row in table["rows"]))
    lines = ["  ".join(["method".ljust(width), "state".ljust(11), *(title.rjust(11) for title in short)])]
    for row in table["rows"]:
        cells = [cell(row, column, table["best"]).rjust(11) for column in COLUMNS]
        lines.append("  ".join([row["method"].ljust(width), row["state"][:11].ljust(11), *cells]))
    return lines


def write_table(compare: CompareDir, config: CompareConfig) -> dict[str, Any]:
    """Build the table from the runs and write table.json, table.csv and table.md (each replaced whole)."""
    table = build_table(compare, config)
    write_json_atomic(compare.table_json, table)
    for path, text in ((compare.table_csv, csv_text(table)), (compare.table_md, markdown(table))):
        partial = path.parent / f".{path.name}.partial-{os.getpid()}"
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    return table
