"""The one lifecycle every engine job runs through: `run_job(kind, folder) -> exit code`.

    status "starting" (with this process's pid) ─► library output to the job's log ─► SIGTERM/SIGINT become one
    StopRequest ─► leftovers of killed writers removed ─► config.yaml read as the kind's type ─► body(JobContext)
    ─► final status from the body's Outcome ─► reporter closed

Any exception (in reading the config or in the body) ends the job `failed` with one sentence (engine.jobs.failures
`explain`), its traceback in the log and "error: SENTENCE" on stderr. A body does only its own work: it reports
states and lines through `context.reporter`, polls `context.stop.requested` where it can stop cleanly, publishes
its outputs atomically (engine.jobs.outputs) and returns an Outcome.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.jobs.failures import EngineError, explain
from engine.jobs.kinds import JobKind
from engine.jobs.outputs import clean_leftovers
from engine.jobs.reporter import JobReporter
from engine.jobs.rundir import JobDir

log = logging.getLogger("engine")


class JobFolderError(EngineError):
    """A job folder the lifecycle cannot run (no config.yaml); the message is one sentence."""


class JobFolderGoneError(EngineError):
    """The job's folder was deleted while the job ran; the message is one sentence (written nowhere but stderr:
    writing a status would make the folder again)."""


class StopRequest:
    """SIGTERM/SIGINT as one flag that a body polls (a training run checks it after every step). With `interrupt`
    a signal also raises KeyboardInterrupt, for a body that cannot poll (an export inside one long write)."""

    def __init__(self, interrupt: bool = False) -> None:
        self.requested = False
        self.interrupt = interrupt
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, _signum: int, _frame: object) -> None:
        self.requested = True
        if self.interrupt:
            raise KeyboardInterrupt


@dataclass
class JobContext:
    """What a body is given: its folder, its typed config, where to report, and whether to stop."""

    job: JobDir
    config: Any
    reporter: JobReporter
    stop: StopRequest
    kind: JobKind
    own_process: bool = False  # the process runs this one job and exits (it may drop what the job does not use)


@dataclass
class Outcome:
    """What a body ends in: a final state (completed, stopped, failed) and what the final status records."""

    state: str
    result: dict[str, Any] | None = None  # what a completed job produced
    error: str | None = None  # one sentence, when failed
    step: int | None = None  # a training run's last optimizer step


def run_job(kind: JobKind, folder: str | Path, own_process: bool = False, config: Any = None) -> int:
    """Run the job in `folder` as a job of `kind`; 0 when it completed or stopped, 1 when it failed. `own_process`:
    this process was started for this job alone (the command line), not a test or tool that goes on. `config`: the
    job's config where this process has it already (a rank of a run of several processes, given the config on its
    command line: its folder's config.yaml is another process's to write, on another machine perhaps), else None:
    the folder's is read."""
    from engine.jobs.console import send_library_output_to_log

    job = kind.job_dir(Path(folder).expanduser().resolve())
    reporter = JobReporter(job)
    try:
        reporter.status("starting")  # before anything else: from now on the page sees this process as the job
        send_library_output_to_log()  # after the reporter: its log handler receives them
        stop = StopRequest(interrupt=kind.interruptible)
        outcome = _body(JobContext(job, config, reporter, stop, kind, own_process))
        reporter.status(outcome.state, **{k: v for k, v in vars(outcome).items() if k != "state" and v is not None})
        if outcome.error:
            print(f"error: {outcome.error}", file=sys.stderr)
    except BaseException as error:  # noqa: BLE001 - every failure must end in a failed status
        log.error("the %s job failed:\n%s", kind.name, traceback.format_exc())
        message = explain(error, kind.name, job.path)
        if not job.path.is_dir():  # deleted while it ran: a status written now would make the folder again
            print(f"error: {message}", file=sys.stderr)
            return 1
        try:
            reporter.status("failed", error=message)
        except OSError as again:  # a full disk: status.json is rewritten in place where even that fits
            log.error("the failed status could not be recorded in full: %s", again)
        print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        try:
            reporter.close()
        except OSError as error:  # the events file cannot flush its last line (a full disk): said, not raised
            log.error("the job's events could not be closed: %s", error)
    return 0 if outcome.state in ("completed", "stopped") else 1


def _body(context: JobContext) -> Outcome:
    """The body's part of the lifecycle: leftovers removed, config read, body called."""
    kind = context.kind
    for path in clean_leftovers(context.job.path) if context.reporter.rank == 0 else ():  # of a killed attempt
        log.info("removed %s, left by a killed attempt", path.name)
    try:
        if context.config is None:
            context.config = kind.read_config(context.job)
    except FileNotFoundError as error:
        raise JobFolderError(str(error)) from None
    outcome = kind.load_body()(context)
    if not isinstance(outcome, Outcome):
        raise TypeError(f"the body of the {kind.name} job returned {outcome!r}, not an Outcome")
    return outcome


def main(argv: list[str]) -> int:
    """`python -m engine run JOB_DIR --kind NAME`: what the page's scheduler starts for every job."""
    import argparse

    from engine.jobs.kinds import UnknownKindError, kind_of

    parser = argparse.ArgumentParser(prog="python -m engine run", description="Run the job in a job folder.")
    parser.add_argument("job_dir", help="the job folder: its config.yaml says what to do")
    parser.add_argument("--kind", required=True, help="the job's kind (train, export, or one KINDS_ENV declares)")
    args = parser.parse_args(argv)
    try:
        kind = kind_of(args.kind)
    except UnknownKindError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_job(kind, args.job_dir, own_process=True)
