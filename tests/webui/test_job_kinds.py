"""The measure of the job lifecycle: a new kind of job, declared here in a few dozen lines (a config, a folder type, a
body reporting two named curves), runs through the page's submit, the real scheduler (`python -m engine run`), the
monitor and the Runs plot without a change to any other module.

The engine process learns of the kind through engine.jobs.kinds.KINDS_ENV, which names this module: importing it
registers the kind (the engine runs with the repository root as its working directory, so `tests.webui.…` imports).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from engine.jobs.events import Metrics, Progress
from engine.jobs.kinds import KINDS_ENV, JobKind, register
from engine.jobs.lifecycle import JobContext, Outcome
from engine.jobs.rundir import JobDir


class ToyConfig(BaseModel):
    steps: int = 3
    margin: float = 0.5


class ToyDir(JobDir):
    kind = "toy"
    LOG = "toy.log"


def body(context: JobContext) -> Outcome:
    """Reports a reward margin and an eval score at every step, then completes."""
    config: ToyConfig = context.config
    context.reporter.status("training")
    for step in range(1, config.steps + 1):
        context.reporter.events.write(Progress(step=step, total=config.steps))
        context.reporter.events.write(Metrics(step=step, values={"reward_margin": config.margin * step,
                                                                 "eval_score": 1.0 / step}))
        if context.stop.requested:
            return Outcome("stopped")
    return Outcome("completed", result={"steps": config.steps})


TOY = register(JobKind("toy", ToyConfig, ToyDir, folder="toys", lane="toy", slots=1, body=f"{__name__}:body"))


def test_a_kind_declared_in_a_test_runs_through_scheduler_monitor_and_runs_plot(tmp_path: Path, monkeypatch):
    from tests.polling import wait_for
    from webui.components.render import loss_colors, loss_frame
    from webui.jobs.scheduler import Scheduler
    from webui.jobs.submit import JobManager

    monkeypatch.setenv(KINDS_ENV, __name__)
    scheduler = Scheduler(tmp_path / "ws")  # the real engine: python -m engine run JOB --kind toy
    job = JobManager(scheduler).submit(TOY, "first", {"steps": 4, "margin": 0.25})
    assert isinstance(job, ToyDir) and job.path == tmp_path / "ws" / "toys" / "first"

    def state() -> str | None:
        scheduler.tick()  # reaps the engine once it has exited
        found = job.read_status().get("state")
        return found if found in ("completed", "failed", "stopped") else None

    assert wait_for(state, timeout=120) == "completed", job.stdout_log.read_text(encoding="utf-8")[-2000:]
    snap = scheduler.monitor(job).refresh()
    assert snap.result == {"steps": 4} and snap.step == 4
    assert snap.curves == {"reward_margin": [(1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0)],
                           "eval_score": [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25)]}
    frame = loss_frame({job.name: snap})  # what the Runs tab draws (webui.tabs.runs.tab.show_runs)
    assert list(frame["series"]) == ["reward_margin"] * 4 + ["eval_score"] * 4
    assert list(frame["loss"])[:4] == [0.25, 0.5, 0.75, 1.0]
    assert set(loss_colors({job.name: snap})) == {"reward_margin", "eval_score"}  # each drawn in a colour
    assert (job.path / "toy.log").is_file()  # the lifecycle's log
    # the process writes its final status, then exits: reaped by a tick soon after (not necessarily by the first)
    wait_for(lambda: scheduler.tick() is not None and not scheduler.children(), timeout=30)
