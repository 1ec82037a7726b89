"""`python launch.py eval CONFIG.yaml [--overwrite]`: base against tuned models on a test set, as a job.

An evaluation is a job of kind `eval` (engine.jobs.kinds.EVAL): its folder (config.output_dir, else
WORKSPACE/evals/NAME with NAME the config file's stem) holds config.yaml (the EvalConfig, paths resolved),
events.jsonl, status.json and eval.log as every job's do, and, once it completes:

    predictions.jsonl   one line a row: row, prompt (the conversation asked), reference, each model's answer, its
                        scores (exact_match, rouge_l, bleu), tokens and whether it stopped, its calls where any
    metrics.json        per model: loss and perplexity on the trained tokens, exact_match, rouge_l, bleu,
                        mean_new_tokens, stopped_share, tool_calls (engine/eval/toolcalls.py), judge (the judge's
                        mean score, 1-10, where eval.judge is set); `best` names the best model per figure
    answers.jsonl       where eval.prompts is set: each model's answer to each of those prompts (no reference)
    judge.jsonl         where eval.judge is set: the judge's reply to each row as it came, the order the answers
                        were shown in and the scores read from it (engine/eval/judge.py)

The job goes loading_data (engine/eval/testset.py) -> loading_model (one base, every adapter over it:
engine/eval/models.py) -> evaluating (per model: loss, then answers: engine/eval/score.py; a progress event per
batch; a stop is honoured between batches) -> saving. Both files are written aside and renamed into place only
at completion, metrics.json last: a killed or stopped evaluation leaves neither, and none from an earlier attempt
(they are removed when a new one starts). `python -m engine run JOB_DIR --kind eval` runs the same job.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from engine.config import ConfigError
from engine.config_eval import EvalConfig, load_eval_config
from engine.eval import general as general_set
from engine.eval import judge as judging
from engine.eval.metrics import text_metrics
from engine.eval.models import Entry, LoadedModels, plan_models
from engine.eval.score import answer_rows, held_out_loss, work
from engine.eval.testset import EvalRow, load_test_rows
from engine.eval.toolcalls import score_calls, score_row
from engine.jobs import rundir
from engine.jobs.events import Progress
from engine.jobs.kinds import EVAL
from engine.jobs.lifecycle import JobContext, Outcome, run_job
from engine.sentences import said

log = logging.getLogger("engine.eval")

LOWER_IS_BETTER = ("loss", "perplexity")
TABLE = (("loss", "loss", "{:.4f}"), ("perplexity", "ppl", "{:.3f}"), ("exact_match", "exact", "{:.3f}"),
         ("rouge_l", "rougeL", "{:.3f}"), ("bleu", "bleu", "{:.2f}"), ("mean_new_tokens", "tokens", "{:.1f}"),
         ("stopped_share", "stopped", "{:.3f}"), ("judge", "judge", "{:.2f}"))
CALL_TABLE = (("name_accuracy", "tool name", "{:.3f}"), ("arguments_exact", "arguments", "{:.3f}"),
              ("invalid_json", "invalid", "{:d}"))


class Stopped(Exception):  # noqa: N818 - a stop request, not an error
    """A stop was requested: the evaluation ends between two batches, writing nothing."""


def eval_body(context: JobContext) -> Outcome:
    """The eval kind's body (engine.jobs.lifecycle)."""
    job: rundir.EvalDir = context.job
    config: EvalConfig = context.config
    reporter = context.reporter
    for stale in (job.metrics, job.predictions, job.general, job.answers, job.judge):  # an earlier attempt's
        stale.unlink(missing_ok=True)
    if config.judge is not None:
        judging.api_key(config.judge)  # a key variable that is not set: said before any model loads
    plan = plan_models(config)  # small files only: a model that is not there fails before the data is read
    reporter.status("loading_data")
    rows, where = load_test_rows(config, reporter.info)
    reporter.info(said("engine.log.eval_test_set", where=where, rows=len(rows)))
    reporter.status("loading_model")
    loaded = LoadedModels(plan, reporter.info)
    reporter.status("evaluating")
    general = general_set.general_rows() if config.general else []
    own = general_set.prompt_rows(config.prompts)
    started, total, done = time.time(), (work(rows) + len(general) + len(own)) * len(plan.entries), 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        elapsed = time.time() - started
        eta = elapsed / done * (total - done) if done else None
        reporter.events.write(Progress(step=done, total=total, elapsed_s=round(elapsed, 1), eta_s=eta))
        if context.stop.requested:
            raise Stopped

    results: dict[str, dict[str, Any]] = {}
    answers: dict[str, dict[int, Any]] = {}
    general_answers: dict[str, dict[int, Any]] = {}
    own_answers: dict[str, dict[int, Any]] = {}
    try:
        for entry in plan.in_load_order():  # each load group once; the results keep config.models' order
            reporter.info(said("engine.log.eval_evaluating", name=entry.name))
            results[entry.name], answers[entry.name], general_answers[entry.name] = evaluate_one(
                loaded, entry, rows, general, config, tick)
            if own:
                with loaded.use(entry) as (model, tokenizer):
                    own_answers[entry.name] = answer_rows(model, tokenizer, own, config.sampling, config.batch_size,
                                                          tick)
        del loaded  # the weights go before the judge is asked: its replies may take minutes
        results, answers, general_answers, own_answers = (in_config_order(plan.entries, found) for found in (
            results, answers, general_answers, own_answers))
        metrics = {"test_set": where, "rows": len(rows), "models": results,
                   "order": list(results)}  # metrics.json's keys are written sorted: the models' order is this
        if general:
            metrics["general"] = general_set.compare(general_answers, general)
        judged = judge_answers(config, rows, general, answers, general_answers, metrics, context, reporter.info)
    except Stopped:
        reporter.info(said("engine.log.eval_stopped"))
        return Outcome("stopped")
    reporter.status("saving")
    metrics["best"] = best_per_figure(results)
    write_results(job, rows, plan.entries, answers, metrics, general_set.lines(general_answers, general), judged,
                  general_set.answer_lines(own_answers, own))
    for line in table(results) + general_table(metrics.get("general")):
        reporter.info(line)
    return Outcome("completed", result={"metrics": str(job.metrics), "predictions": str(job.predictions),
                                        "best": metrics["best"]})


def in_config_order(entries: tuple[Entry, ...], by_name: dict[str, Any]) -> dict[str, Any]:
    """The models' results in the order config.models names them (base first where it is named first)."""
    return {entry.name: by_name[entry.name] for entry in entries if entry.name in by_name}


def evaluate_one(loaded: LoadedModels, entry: Entry, rows: list[EvalRow], general: list[EvalRow],
                 config: EvalConfig, tick: Any) -> tuple[dict[str, Any], dict[int, Any], dict[int, Any]]:
    """One model's figures, its answers to the test rows (with their scores and calls) and to the general
    prompts."""
    with loaded.use(entry) as (model, tokenizer):
        loss = held_out_loss(model, tokenizer, rows, config.cutoff_len, config.batch_size, tick)
        answers = answer_rows(model, tokenizer, rows, config.sampling, config.batch_size, tick)
        general_answers = answer_rows(model, tokenizer, general, config.sampling, config.batch_size, tick)
    asked = [row for row in rows if row.prompt is not None]
    figures: dict[str, Any] = {"source": entry.source, "kind": entry.kind, "loss": loss.loss,
                               "perplexity": loss.perplexity, "loss_tokens": loss.tokens, "loss_rows": loss.rows}
    per_row: list[dict[str, float]] = []
    if asked:  # a plain-text test set has only the loss
        text = text_metrics([answers[row.number] for row in asked], [row.reference for row in asked])
        per_row = text.pop("per_row")
        figures.update(text)
    calls = {}
    if any(row.calls or row.tools for row in asked):
        scored = {row.number: score_row(answers[row.number].raw, row.calls) for row in asked}
        figures["tool_calls"] = score_calls(list(scored.values()))
        calls = {number: score.calls for number, score in scored.items()}
    paired = {row.number: (answers[row.number], scores, calls.get(row.number))
              for row, scores in zip(asked, per_row, strict=True)}
    return figures, paired, general_answers


def question(prompt: list[dict]) -> str:
    """A row's conversation as the judge reads it: the last turn alone, the earlier ones named by role."""
    if len(prompt) == 1:
        return str(prompt[0].get("content") or "")
    return "\n".join(f"{turn.get('role')}: {turn.get('content') or ''}" for turn in prompt)


def judge_answers(config: EvalConfig, rows: list[EvalRow], general: list[EvalRow], answers: dict[str, dict[int, Any]],
                  general_answers: dict[str, dict[int, Any]], metrics: dict[str, Any], context: JobContext,
                  info: Any) -> list[dict[str, Any]]:
    """The judge's scores into metrics (a `judge` figure per model, the general prompts' too, and a `judge`
    section: rows scored, failed, the sentence that ended it early) and its lines for judge.jsonl."""
    if config.judge is None:
        return []

    def poll() -> None:
        if context.stop.requested:
            raise Stopped

    asked = [row for row in rows if row.prompt is not None]
    items = [judging.Item(row.number, question(row.prompt), row.reference,
                          {name: given[row.number][0].text for name, given in answers.items()}) for row in asked]
    info(said("engine.log.judge", model=config.judge.model, url=config.judge.base_url, rows=len(items)))
    test = judging.judge(config.judge, items, "test", poll)
    section = {"model": config.judge.model, "base_url": config.judge.base_url, **test.summary(len(items))}
    for name, score in test.means().items():
        metrics["models"][name]["judge"] = score
    lines = test.lines
    if general and test.error is None:
        items = [judging.Item(row.number, question(row.prompt), None,
                              {name: given[row.number].text for name, given in general_answers.items()})
                 for row in general]
        verdicts = judging.judge(config.judge, items, "general", poll)
        section["general"] = verdicts.summary(len(items))
        for name, score in verdicts.means().items():
            metrics["general"]["models"][name]["judge"] = score
        lines += verdicts.lines
    metrics["judge"] = section
    failed = test.failed + section.get("general", {}).get("failed", 0)
    if test.error:
        info(said("engine.log.judge_error", error=test.error))
    elif failed:
        info(said("engine.log.judge_unread", failed=failed))
    return lines


def best_per_figure(results: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """figure -> the models with the best value (lowest loss and perplexity, highest otherwise): all of them where
    some tie for it, and no entry where every model has the same value (a single model's included), as the page's
    table stars them and a comparison's table.json names its best."""
    best = {}
    for figure in ("loss", "perplexity", "exact_match", "rouge_l", "bleu", "judge"):
        values = {name: result[figure] for name, result in results.items() if result.get(figure) is not None}
        if len(set(values.values())) < 2:
            continue
        top = (min if figure in LOWER_IS_BETTER else max)(values.values())
        best[figure] = [name for name, value in values.items() if value == top]
    return best


def prediction_lines(rows: list[EvalRow], entries: tuple[Entry, ...], answers: dict[str, dict[int, Any]]
                     ) -> list[dict[str, Any]]:
    lines = []
    for row in rows:
        line: dict[str, Any] = {"row": row.number, "prompt": row.prompt, "reference": row.reference,
                                "answers": {}, "scores": {}, "new_tokens": {}, "stopped": {}}
        if row.calls:
            line["reference_calls"] = row.calls
        for entry in entries:
            if row.number not in answers[entry.name]:
                continue
            answer, scores, calls = answers[entry.name][row.number]
            line["answers"][entry.name] = answer.text
            if calls is not None:
                line.setdefault("calls", {})[entry.name] = calls
            line["scores"][entry.name] = scores
            line["new_tokens"][entry.name] = answer.new_tokens
            line["stopped"][entry.name] = answer.stopped
        lines.append(line)
    return lines


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    """One JSON object a line, written aside and renamed into place."""
    partial = path.parent / f".{path.name}.partial-{os.getpid()}"
    try:
        with open(partial, "w", encoding="utf-8") as file:
            for line in lines:
                file.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_results(job: rundir.EvalDir, rows: list[EvalRow], entries: tuple[Entry, ...],
                  answers: dict[str, dict[int, Any]], metrics: dict[str, Any], general: list[dict[str, Any]],
                  judged: list[dict[str, Any]], own: list[dict[str, Any]] | None = None) -> None:
    """predictions.jsonl, general.jsonl, answers.jsonl and judge.jsonl, then metrics.json, each written aside and
    renamed into place (metrics.json last: it is what says the evaluation completed)."""
    write_jsonl(job.predictions, prediction_lines(rows, entries, answers))
    if general:
        write_jsonl(job.general, general)
    if own:
        write_jsonl(job.answers, own)
    if judged:
        write_jsonl(job.judge, judged)
    rundir.write_json_atomic(job.metrics, metrics)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    """The figures as a small text table for the log, one line per model."""
    columns = list(TABLE)
    calls = any("tool_calls" in result for result in results.values())
    if calls:
        columns += CALL_TABLE
    width = max([len("model"), *map(len, results)])
    lines = ["  ".join(["model".ljust(width), *(title.rjust(9) for _, title, _ in columns)])]
    for name, result in results.items():
        source = {**result, **(result.get("tool_calls") or {})}
        cells = [_cell(source.get(key), fmt).rjust(9) for key, _, fmt in columns]
        lines.append("  ".join([name.ljust(width), *cells]))
    return lines


def general_table(general: dict[str, Any] | None) -> list[str]:
    """The general prompts' figures for the log: one line per model."""
    if not general:
        return []
    lines: list[str] = [said("engine.log.general_header", prompts=general["prompts"])]
    for name, one in general["models"].items():
        lines.append(f"  {name}: {one['mean_new_tokens']:.1f}, {one['stopped_share']:.2f}, "
                     f"{_cell(one.get('changed_share'), '{:.2f}')}, {_cell(one.get('length_change'), '{:+.1f}')}")
    return lines


# ---------------------------------------------------------------------------------------------- command line


def job_folder(config: EvalConfig, config_path: Path, workspace: str) -> Path:
    if config.output_dir:
        return Path(config.output_dir)
    return Path(workspace).expanduser().resolve() / EVAL.folder / config_path.stem


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py eval", description=(
        "Evaluate the base model and finished runs on a test set: the held-out loss, each model's answers and "
        "their metrics (exact match, ROUGE-L, BLEU, tool calls), written to the evaluation's folder."))
    parser.add_argument("config", help="the evaluation's YAML config (models, data or validation_of, ...)")
    parser.add_argument("--workspace", default="workspace",
                        help="where evals/NAME is written when the config has no output_dir (default: workspace)")
    parser.add_argument("--overwrite", action="store_true", help="replace a completed evaluation in the folder")
    args = parser.parse_args(argv)
    try:
        config = load_eval_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    job = rundir.EvalDir(job_folder(config, Path(args.config), args.workspace))
    if job.metrics.is_file() and not args.overwrite:
        print(f"error: {job.path} holds a completed evaluation: give --overwrite to replace it, or another "
              "output_dir.", file=sys.stderr)
        return 2
    if job.process_alive():
        print(f"error: an evaluation is running in {job.path}: wait for it or stop it first.", file=sys.stderr)
        return 2
    job.path.mkdir(parents=True, exist_ok=True)
    job.clear_outputs()
    job.config.write_text(config.model_copy(update={"output_dir": str(job.path)}).to_yaml(), encoding="utf-8")
    return run_job(EVAL, job.path, own_process=True)
