"""Following a run's events: only new bytes are read; a partial last line waits for its newline."""

from __future__ import annotations

import json
from pathlib import Path

from engine.jobs.rundir import RunDir
from webui.jobs.monitor import JobMonitor


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def line(**event) -> str:
    return json.dumps({"t": 1.0, **event}) + "\n"


def test_reads_only_new_bytes_and_skips_partial_line(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    events = run / "events.jsonl"
    monitor = JobMonitor(RunDir(run))
    assert monitor.refresh().version == 0  # no file yet

    append(events, line(kind="status", state="training") + line(kind="progress", step=1, total=10, epoch=0.1,
                                                                   eta_s=9, elapsed_s=1))
    snap = monitor.refresh()
    assert (snap.state, snap.step, snap.total) == ("training", 1, 10)
    first_offset = monitor.offset
    assert first_offset == events.stat().st_size

    partial = line(kind="metrics", step=1, loss=2.5, learning_rate=1e-4, grad_norm=1.0, tokens_per_s=100.0)
    append(events, partial[:20])  # the engine is mid-write
    snap = monitor.refresh()
    assert snap.train_loss == [] and monitor.offset == first_offset

    append(events, partial[20:])
    snap = monitor.refresh()
    assert snap.train_loss == [(1, 2.5)] and snap.tokens_per_s == 100.0
    assert monitor.offset == events.stat().st_size

    append(events, line(kind="metrics", step=1, eval_loss=2.0) + line(kind="log", level="info", message="hello"))
    append(events, line(kind="status", state="completed"))
    snap = monitor.refresh()
    assert snap.eval_loss == [(1, 2.0)] and snap.finished
    assert any("hello" in entry for entry in snap.log)


def test_cost_does_not_depend_on_log_length(tmp_path: Path, monkeypatch):
    """A refresh after a long history reads exactly the appended bytes."""
    run = tmp_path / "run"
    run.mkdir()
    events = run / "events.jsonl"
    append(events, "".join(line(kind="log", level="info", message="x" * 100) for _ in range(5000)))
    monitor = JobMonitor(RunDir(run))
    monitor.refresh()

    reads: list[int] = []
    first_lines: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def seek(self, n, *a):
            return self.f.seek(n, *a)

        def read(self, *a):
            data = self.f.read(*a)
            reads.append(len(data))
            return data

        def readline(self, *a):  # the monitor compares the first line to notice a run started afresh
            data = self.f.readline(*a)
            first_lines.append(len(data))
            return data

    new = line(kind="log", level="info", message="new")
    append(events, new)
    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **k: Spy(real_open(p, mode, *a, **k)))
    snap = monitor.refresh()
    assert reads == [len(new.encode())]
    assert first_lines and all(n <= 200 for n in first_lines)  # one short line, whatever the history
    assert snap.log[-1].endswith("new")


def test_queued_run_shows_its_status_before_any_event(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "status.json").write_text('{"state": "queued", "pid": null, "error": null}')
    assert JobMonitor(RunDir(run)).refresh().state == "queued"


def test_steps_trained_again_after_a_resume_supersede_the_old_ones(tmp_path: Path):
    """Resumed from checkpoint-3 after step 5: steps 4 and 5 come again, and the curve holds each step once."""
    run = tmp_path / "run"
    run.mkdir()
    events = run / "events.jsonl"
    append(events, "".join(line(kind="metrics", step=s, loss=10.0 - s) for s in range(1, 6)))
    append(events, "".join(line(kind="metrics", step=s, loss=20.0 - s) for s in range(4, 8)))
    append(events, line(kind="metrics", step=7, eval_loss=3.0) + line(kind="metrics", step=7, eval_loss=2.5))
    snap = JobMonitor(RunDir(run)).refresh()
    assert snap.train_loss == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 16.0), (5, 15.0), (6, 14.0), (7, 13.0)]
    assert snap.eval_loss == [(7, 2.5)]


def test_a_resumed_attempt_forgets_the_last_attempts_error(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    events = run / "events.jsonl"
    append(events, line(kind="status", state="starting") + line(kind="status", state="failed", error="killed"))
    monitor = JobMonitor(RunDir(run))
    assert monitor.refresh().error == "killed"
    append(events, line(kind="status", state="starting") + line(kind="status", state="completed"))
    snap = monitor.refresh()
    assert snap.state == "completed" and snap.error is None
    assert JobMonitor(RunDir(run)).refresh().error is None  # read from the start, after a restart of the page


def test_a_long_runs_log_keeps_its_first_lines_and_says_how_many_were_left_out(tmp_path: Path):
    """A 3,000-step run's log box showed its last 400 lines only: the setup lines (the data read, the trainable
    parameters) were gone. The first lines stay, then one line counting those left out, then the newest."""
    from webui.jobs import monitor as monitor_module

    run = tmp_path / "run"
    run.mkdir()
    total = monitor_module.FIRST_LINES + monitor_module.LOG_LINES + 25
    append(run / "events.jsonl", "".join(line(kind="log", level="info", message=f"line {n}") for n in range(total)))
    shown = [str(text) for text in JobMonitor(RunDir(run)).refresh().log]
    assert len(shown) == monitor_module.FIRST_LINES + 1 + monitor_module.LOG_LINES
    assert shown[0].endswith("line 0") and shown[monitor_module.FIRST_LINES - 1].endswith(
        f"line {monitor_module.FIRST_LINES - 1}")
    assert "25 lines left out here" in shown[monitor_module.FIRST_LINES]
    assert shown[-1].endswith(f"line {total - 1}")
