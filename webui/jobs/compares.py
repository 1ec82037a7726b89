"""Method comparisons from the page (WORKSPACE/compares/NAME/): one ordinary training run per method, queued in the
scheduler's device lane one after another (WORKSPACE/runs/NAME-METHOD, each a normal run the Runs, Chat, Evaluate
and Export tabs use), and the table built from their outputs (engine/compare/table.py, plain Python: reading the
runs' JSON files is all the web process does).

The comparison's folder holds compare.yaml and table.json / table.csv / table.md, rewritten whenever the page reads
the table, so they survive restarts. Start plans as the command line does (engine/compare/plan.py): completed
methods are not trained again, stopped ones resume from their checkpoint. Stop takes the queued runs out of the
queue and stops the one that trains (it saves a checkpoint): Start again resumes the comparison.
"""

from __future__ import annotations

from typing import Any

from engine.compare import estimates as estimated
from engine.compare.plan import DONE, plan, prepare, write_compare_yaml
from engine.compare.table import CompareDir, write_table
from engine.config_compare import CompareConfig, run_config
from engine.jobs.kinds import TRAIN
from engine.jobs.rundir import FINAL_STATES
from webui.jobs.paths import PathError, safe_name
from webui.jobs.scheduler import QUEUED, Scheduler
from webui.jobs.submit import JobManager

COMPARES = "compares"


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
        """Queue every method not done yet as a run, in order (ConfigError, one sentence per problem, where a
        method's folder cannot be used); the runs start one at a time as the device lane frees. `model_config`:
        the base model's config.json as the page read it, for each method's memory estimate (estimate.json)."""
        compare = self.compare(name)
        config = config.model_copy(update={"output_dir": str(compare.path),
                                           "runs_dir": str(self.scheduler.folder(TRAIN))})
        # the model and dataset as an engine process gets them, checked (a path outside is refused here)
        checked = self.scheduler.boundary.config(run_config(config, config.methods[0], compare.path))
        config = config.model_copy(update={"model": checked.model})
        found = estimated.method_estimates(config, model_config, *estimated.machine())  # nvidia-smi: not locked
        with self.scheduler.lock:
            steps = plan(compare, config)
            write_compare_yaml(compare, config)
            estimated.write_estimates(compare.path, found)
            for step in steps:
                if step.action == DONE:
                    continue
                prepare(step)
                self.jobs.requeue(step.run, step.config)
        write_table(compare, config)
        return compare

    def stop(self, compare: CompareDir) -> bool:
        """Take the comparison's queued runs out of the queue and stop the one that trains; False when none was
        queued or training."""
        config = compare.read_config()
        stopped = False
        with self.scheduler.lock:
            for method in config.methods:
                run = compare.run(config, method)
                state = run.read_status().get("state")
                if state == QUEUED:
                    run.write_status("stopped", pid=None, error=None, note="stopped before it started")
                    stopped = True
                elif state is not None and state not in FINAL_STATES:
                    stopped = self.scheduler.stop(run) or stopped
            self.scheduler.scan()
        return stopped

    def table(self, compare: CompareDir) -> dict[str, Any]:
        """The table as the runs' outputs say now (and its files rewritten)."""
        return write_table(compare, compare.read_config())

    def latest(self) -> CompareDir | None:
        """The comparison written last, or None."""
        found = [(path.stat().st_mtime, path.name) for path in self.folder.glob("*/compare.yaml")
                 if not path.parent.is_symlink()] if self.folder.is_dir() else []
        return self.compare(max(found)[1]) if found else None

    @staticmethod
    def running(table: dict[str, Any]) -> bool:
        """Whether a method of the table is queued or training."""
        return any(row["state"] not in (*FINAL_STATES, "not started") for row in table["rows"])
