"""Method comparisons from the page (WORKSPACE/compares/NAME/): a job of kind `compare` queued in the scheduler's
device lane (engine/compare/job.py, the body `python launch.py compare` runs too), which trains and evaluates one
ordinary run per method one after another (WORKSPACE/runs/NAME-METHOD, each a normal run the Runs, Chat, Evaluate
and Export tabs use); the table is built from their outputs (engine/compare/table.py, plain Python: reading the
runs' JSON files is all the web process does).

The comparison's folder holds the job's config.yaml, status.json and events.jsonl, and table.json / table.csv /
table.md, rewritten whenever the page reads the table, so they survive restarts. Start plans as the command line
does (engine/compare/plan.py) so that a folder it cannot use is refused at once: completed methods are not trained
again, stopped ones resume from their checkpoint. Stop stops the comparison's process, which stops the method that
trains (it saves a checkpoint): Start again resumes the comparison.
"""

from __future__ import annotations

from typing import Any

from engine.compare import estimates as estimated
from engine.compare.plan import plan
from engine.compare.table import CompareDir, write_table
from engine.config_compare import CompareConfig, run_config
from engine.errors import UserError
from engine.estimate import methods as estimates
from engine.jobs.kinds import TRAIN
from engine.jobs.rundir import FINAL_STATES
from webui.jobs.paths import PathError, safe_name
from webui.jobs.scheduler import QUEUED, Scheduler
from webui.jobs.submit import JobManager

COMPARES = "compares"


class CompareRunningError(UserError, RuntimeError):
    """Start pressed for a comparison that is queued or running; the message is one sentence for the page."""


class CompareManager:
    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.jobs = JobManager(scheduler)  # the one writer of a queued status
        self.folder = scheduler.workspace / COMPARES

    def compare(self, name: str) -> CompareDir:
        """The folder of comparison `name`; PathError for a name that is not one plain name, or a symlink."""
        path = self.folder / safe_name(name)
        if path.is_symlink():
            raise PathError(f"{COMPARES}/{name} is a symbolic link, not a comparison folder: it is not followed.")
        return CompareDir(path)

    def start(self, name: str, config: CompareConfig, model_config: dict[str, Any] | None = None) -> CompareDir:
        """Queue the comparison as a job (ConfigError, one sentence per problem, where a method's folder cannot be
        used; RuntimeError where the comparison runs already); it starts when the device lane frees. `model_config`:
        the base model's config.json as the page read it, for each method's memory estimate (estimate.json)."""
        compare = self.compare(name)
        config = config.model_copy(update={"output_dir": str(compare.path),
                                           "runs_dir": str(self.scheduler.folder(TRAIN))})
        # the model and dataset as an engine process gets them, checked (a path outside is refused here)
        checked = self.scheduler.boundary.config(run_config(config, config.methods[0], compare.path))
        config = config.model_copy(update={"model": checked.model})
        found = estimates.method_estimates(config, model_config, *estimates.machine())  # nvidia-smi: not locked
        with self.scheduler.lock:
            if compare.read_status().get("state") not in (*FINAL_STATES, None):
                raise CompareRunningError(f"The comparison {compare.name} is queued or running: stop it first, or "
                                          "give this one another name.")
            plan(compare, config)
            compare.path.mkdir(parents=True, exist_ok=True)
            estimated.write_estimates(compare.path, found)
            write_table(compare, config)
            self.jobs.requeue(compare, config.model_copy(update={"output_dir": str(compare.path)}))
        return compare

    def stop(self, compare: CompareDir) -> bool:
        """Take a queued comparison out of the queue, or stop the running one (it stops the method that trains);
        False when it was neither."""
        with self.scheduler.lock:
            state = compare.read_status().get("state")
            if state == QUEUED:
                compare.write_status("stopped", pid=None, error=None, note="stopped before it started")
                stopped = True
            else:
                stopped = state not in (*FINAL_STATES, None) and self.scheduler.stop(compare)
            self.scheduler.scan()
        return stopped

    def table(self, compare: CompareDir) -> dict[str, Any]:
        """The table as the runs' outputs say now (and its files rewritten)."""
        return write_table(compare, compare.read_config())

    def latest(self) -> CompareDir | None:
        """The comparison written last, or None."""
        found = [(path.stat().st_mtime, path.parent.name) for path in self.folder.glob("*/config.yaml")
                 if not path.parent.is_symlink()] if self.folder.is_dir() else []
        return self.compare(max(found)[1]) if found else None

    @staticmethod
    def running(compare: CompareDir) -> bool:
        """Whether the comparison is queued or running."""
        return compare.read_status().get("state") not in (*FINAL_STATES, None)
