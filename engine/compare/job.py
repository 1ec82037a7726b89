"""A method comparison as a job of kind `compare` (engine.jobs.kinds.COMPARE): one status for the page and the
command line.

The comparison's folder (WORKSPACE/compares/NAME, or its config's output_dir) holds config.yaml (the CompareConfig,
paths resolved), status.json, events.jsonl and compare.log as every job's do, estimate.json (each method's memory
estimate before Start: engine/compare/estimates.py), evals/METHOD (each method's evaluation job, where
config.evaluate) and table.json / table.csv / table.md (engine/compare/table.py), rewritten after every method.

The body plans (engine/compare/plan.py), then per method: status `training` (note: the method) while the method's
run trains in an engine process of its own (`python -m engine run RUN --kind train`: its peak memory is its own),
then `evaluating` while its evaluation job runs (`--kind eval`; the base's first, once per comparison), then a
progress event (methods done of all) and the table. A stop (SIGTERM, Ctrl-C) is passed on to the process that runs
(a run saves a checkpoint and ends `stopped`) and the comparison ends `stopped` after it; the job again resumes:
completed methods are not trained again, a stopped one continues from its checkpoint, an evaluation not completed
runs again. A method that fails is said in the log and the others still train: the comparison then ends `failed`,
naming it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.__main__ import PARENT_ENV
from engine.compare import estimates as estimated
from engine.compare.plan import DONE, RESUME, Step, evaluation_due, plan, prepare, prepare_evaluation
from engine.compare.table import CompareDir, text_lines, write_table
from engine.config_compare import CompareConfig
from engine.config_eval import BASE
from engine.estimate import methods as estimates
from engine.estimate.lengths import measured_lengths
from engine.jobs.events import Progress
from engine.jobs.kinds import EVAL, TRAIN, JobKind
from engine.jobs.lifecycle import JobContext, Outcome, StopRequest
from engine.jobs.rundir import JobDir
from engine.sentences import Sentence, said, status_error

Launch = Callable[[JobKind, JobDir, StopRequest], int]  # runs the prepared job folder; its exit code
POLL_S = 0.2


def child_process(kind: JobKind, job: JobDir, stop: StopRequest) -> int:
    """Run the job in an engine process of its own, as the page's scheduler does (its output to the job's
    stdout.log); a stop is passed on to it as SIGTERM, and it is killed with this process (PARENT_ENV)."""
    with open(job.stdout_log, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "engine", "run", str(job.path), "--kind", kind.name],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, PARENT_ENV: str(os.getpid())})
    signalled = False
    while True:
        try:
            return process.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if stop.requested and not signalled:
                process.send_signal(signal.SIGTERM)
                signalled = True


def compare_body(context: JobContext, launch: Launch | None = None) -> Outcome:
    """The compare kind's body (engine.jobs.lifecycle)."""
    launch = launch or child_process
    compare, config, reporter = CompareDir(context.job.path), context.config, context.reporter
    if problem := data_problem(config):  # before any method is queued to fail with training's own advice
        return Outcome("failed", error=problem)
    found = estimates.method_estimates(config, estimated.read_model_config(config), *estimates.machine(),
                                       lengths=measured_lengths(config, reporter.info))
    estimated.write_estimates(compare.path, found)
    for line in estimates.lines(found):
        reporter.info(line)
    steps = plan(compare, config)
    write_table(compare, config)
    failed: dict[str, str] = {}  # method -> the reason its run or evaluation gave
    started = time.time()
    for number, step in enumerate(steps, 1):
        if context.stop.requested:
            break
        state, reason = _method(compare, config, step, context, launch)
        if state == "failed":
            failed[step.method] = reason
        for line in text_lines(write_table(compare, config)):
            reporter.info(line)
        if state == "stopped":
            break
        reporter.events.write(Progress(step=number, total=len(steps), elapsed_s=round(time.time() - started, 1)))
    table = write_table(compare, config)
    result = {"table": str(compare.table_md), "completed": table["completed"], "methods": table["methods"]}
    if context.stop.requested or any(row["state"] == "stopped" for row in table["rows"]):
        return Outcome("stopped", result=result)
    if failed:  # the first failure's own sentence: often every method failed the same way (the dataset, the model)
        first, why = next(iter(failed.items()))
        why = Sentence(why.rstrip("."), getattr(why, "key", None), getattr(why, "values", None))
        return Outcome("failed", result=result, error=said(
            "engine.log.compare_job_failed", methods=", ".join(failed), first=first, why=why,
            them=said("engine.log.compare_it" if len(failed) == 1 else "engine.log.compare_them")))
    return Outcome("completed", result=result)


def data_problem(config: CompareConfig) -> str | None:
    """The sentence for a dataset file of preference pairs or KTO rows (engine.config_compare.compare_data_problem,
    the Compare tab's too), read from its first row; None for anything else (the runs say what else is wrong)."""
    from engine.config_compare import compare_data_problem
    from engine.config_stage import PREFERENCE_STAGES
    from engine.data.formats import apply_columns, preference_shape
    from engine.data.sources import is_file, sample_source
    from engine.jobs.failures import DataError

    if config.train.stage in PREFERENCE_STAGES:
        return None
    for source in config.data.sources():
        name = Path(source.path).name
        try:
            records = sample_source(source.path, source.split, 1).records if is_file(source.path) else []
            records = apply_columns(records, source.columns or {}, name) if records else []
        except (DataError, OSError):
            continue
        if records and (shape := preference_shape(records[0])):
            return compare_data_problem(name, shape)
    return None


def _method(compare: CompareDir, config: CompareConfig, step: Step, context: JobContext,
            launch: Launch) -> tuple[str, str]:
    """Train the method where it is not done, then evaluate it where that is due; its final state, and the reason
    where it failed."""
    reporter = context.reporter
    if step.action == DONE:
        reporter.info(said("engine.log.compare_done", method=step.method, path=str(step.run.path)))
    else:
        compare.evaluation(step.method).metrics.unlink(missing_ok=True)  # of the run before: not this one's
        reporter.status("training", note=step.method)
        key = "engine.log.compare_resuming" if step.action == RESUME else "engine.log.compare_training"
        reporter.info(said(key, method=step.method, path=str(step.run.path)))
        prepare(step)
        state, reason = _ended(step.method, TRAIN, step.run, launch(TRAIN, step.run, context.stop), reporter.info)
        if state != "completed":
            return state, reason
    for evaluated in (BASE, step.method):  # the base's once, on the first completed run's held-out rows
        wanted = evaluation_due(compare, config, evaluated, step.run)
        if wanted is None:
            continue
        if context.stop.requested:
            return "stopped", ""
        job = compare.evaluation(evaluated)
        reporter.status("evaluating", note=evaluated)
        reporter.info(said("engine.log.compare_evaluating", method=evaluated, path=str(job.path)))
        prepare_evaluation(job, wanted)
        state, reason = _ended(evaluated, EVAL, job, launch(EVAL, job, context.stop), reporter.info)
        if state != "completed":
            return state, reason
    return "completed", ""


def _ended(method: str, kind: JobKind, job: JobDir, code: int, say: Callable[[str], Any]) -> tuple[str, str]:
    """The final state of a method's job (completed, stopped or failed), and its reason, said, where it failed."""
    status = job.read_status()
    state = status.get("state")
    if code == 0 and state in ("completed", "stopped"):
        if state == "stopped":
            say(said("engine.log.compare_stopped", method=method))
        return state, ""
    reason = status_error(status) or said("engine.log.compare_exit_code", code=code)
    say(said("engine.log.compare_eval_failed" if kind is EVAL else "engine.log.compare_failed", method=method,
             reason=reason, log=str(job.log)))
    return "failed", said("engine.log.compare_its_evaluation", reason=reason) if kind is EVAL else reason
