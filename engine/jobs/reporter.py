"""JobReporter: how an engine job tells the world where it is.

Every state goes to the job's events.jsonl (engine.jobs.events) and status.json together, with this
process's identity (pid and start time: how the page knows the job is alive); every line for the
user goes to the events, the job's log file and stdout. Library logging is routed to the log file,
which keeps full tracebacks.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from engine import config_migrate as migrate
from engine.jobs import rundir
from engine.jobs.events import EventWriter, Status

log = logging.getLogger("engine")


class JobReporter:
    def __init__(self, job: rundir.JobDir, echo: bool = True):
        self.job = job
        self.echo = echo  # print user lines on stdout too (the command line's view)
        job.path.mkdir(parents=True, exist_ok=True)
        self.events = EventWriter(job.events)
        self.identity = rundir.process_identity()
        handler = logging.FileHandler(job.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        root.addHandler(handler)
        self._handler = handler

    def status(self, state: str, **fields: Any) -> Status:
        try:
            event = self.events.status(state, **fields)
        finally:  # status.json also where the event cannot be written (a full disk): the page reads it first
            rundir.write_json_atomic(self.job.status, migrate.STATUS.stamp(
                {"state": state, **self.identity, "t": time.time(), **fields}))
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
