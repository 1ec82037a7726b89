"""JobReporter: how an engine job tells the world where it is.

Every state goes to the job's events.jsonl (engine.jobs.events) and status.json together, with this
process's identity (pid and start time: how the page knows the job is alive); every line for the
user goes to the events, the job's log file and stdout. Library logging is routed to the log file,
which keeps full tracebacks.

In a run of several processes (torchrun sets RANK) only rank 0 reports: the other ranks' reporters write their
events nowhere and no status, and their log lines go to RUN/ranks/rank-N.log (where their stdout and stderr also go,
engine/train/launch.py), so one run has one event stream and one status whatever its number of processes.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from engine import config_migrate as migrate
from engine.jobs import rundir
from engine.jobs.events import EventWriter, Status
from engine.sentences import keyed_fields

log = logging.getLogger("engine")
RANKS = "ranks"  # RUN/ranks/rank-N.log: the log of each rank but 0 of a run of several processes


def rank() -> int:
    """This process's global rank in a run of several processes (torchrun's RANK), 0 in a run of one."""
    return int(os.environ.get("RANK", "0") or 0)


def rank_log(path: Path, number: int) -> Path:
    """Where rank `number` (above 0) of the job in `path` writes its log."""
    return path / RANKS / f"rank-{number}.log"


class JobReporter:
    def __init__(self, job: rundir.JobDir, echo: bool = True):
        self.job = job
        self.echo = echo  # print user lines on stdout too (the command line's view)
        job.path.mkdir(parents=True, exist_ok=True)
        self.rank = rank()
        self.events = EventWriter(job.events if self.rank == 0 else Path(os.devnull))
        self.identity = rundir.process_identity()
        log_file = job.log if self.rank == 0 else rank_log(job.path, self.rank)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        root.addHandler(handler)
        self._handler = handler

    def status(self, state: str, **fields: Any) -> Status:
        if self.rank:  # only rank 0 tells the page where the run is
            log.info("state: %s%s", state, f" ({fields['error']})" if fields.get("error") else "")
            return Status(state=state, **fields)
        try:
            event = self.events.status(state, **fields)
        finally:  # status.json also where the event cannot be written (a full disk): the page reads it first
            rundir.write_json_atomic(self.job.status, migrate.STATUS.stamp(
                keyed_fields({"state": state, **self.identity, "t": time.time(), **fields})))
        log.info("state: %s%s", state, f" ({fields['error']})" if fields.get("error") else "")
        return event

    def info(self, message: str) -> None:
        """A line for the user: the events stream, the log file and stdout."""
        self.events.log(message)
        log.info(message)
        if self.echo:
            print(message, flush=True)

    def close(self) -> None:
        self.events.close()
        logging.getLogger().removeHandler(self._handler)
        self._handler.close()

    def __enter__(self) -> JobReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
