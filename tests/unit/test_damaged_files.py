"""Every reader of a job file checks its shape: a status.json, metrics.json or events line that is not JSON, or
holds a list, a string, a number, a text pid, reads as damaged with one sentence naming what is wrong, never as an
AttributeError or TypeError in the reader (issue 24, item 7). Files only: no process is started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.jobs.events import EventError, EventTail, parse
from engine.jobs.rundir import RunDir, process_alive
from webui.forms.models import RECENT_FILE, recent_models

# name -> the text of a damaged JSON file: each shape the audit wrote, and a few of the same family
DAMAGED_JSON = {
    "not JSON": "{not json",
    "empty": "",
    "a list": "[1, 2]",
    "a string": '"training"',
    "a number": "42",
    "null": "null",
    "not UTF-8": b"\xff\xfe{".decode("latin-1"),
}
DAMAGED_STATUS = {
    **DAMAGED_JSON,
    "a text pid": json.dumps({"state": "training", "pid": "1234"}),
    "a boolean pid": json.dumps({"state": "training", "pid": True, "pid_started": 1.0}),
    "a text start time": json.dumps({"state": "training", "pid": 1, "pid_started": "yesterday"}),
    "a pid without its start time": json.dumps({"state": "training", "pid": 1}),
    "a number for the state": json.dumps({"state": 5}),
    "no state": json.dumps({"pid": None}),
    "an unknown state": json.dumps({"state": "dancing"}),
    "a list for the error": json.dumps({"state": "failed", "error": ["a"]}),
    "a text step": json.dumps({"state": "completed", "step": "six"}),
}
DAMAGED_METRICS = {
    **{k: v for k, v in DAMAGED_JSON.items() if k != "empty"},
    "a text loss": json.dumps({"train_loss": "low"}),
    "a list for the time": json.dumps({"wall_s": [1]}),
}
DAMAGED_EVENT_LINES = {
    "not JSON": "{x",
    "a list": "[1]",
    "a string": '"status"',
    "a number": "3",
    "a number for the kind": '{"kind": 5}',
    "a list for the kind": '{"kind": ["status"]}',
    "a list for the state": '{"kind": "status", "state": ["training"]}',
    "a text step": '{"kind": "progress", "step": "a", "total": 3}',
    "no total": '{"kind": "progress", "step": 1}',
    "a list of values": '{"kind": "metrics", "step": 1, "values": [1]}',
    "a text value": '{"kind": "metrics", "step": 1, "values": {"loss": "low"}}',
    "a version 1 list of values": '{"kind": "metrics", "step": 1, "values": [1], "loss": 1.0}',
    "a mapping for a message": '{"kind": "log", "message": {}}',
    "a text time": '{"kind": "log", "message": "hi", "t": "noon"}',
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode("utf-8"))


@pytest.mark.parametrize("shape", DAMAGED_STATUS)
def test_a_damaged_status_reads_as_damaged_with_its_reason(tmp_path: Path, shape: str):
    run = RunDir(tmp_path / "run")
    write(run.status, DAMAGED_STATUS[shape])
    status = run.read_status()
    assert status["state"] == "failed" and status["damaged"] is True, status
    assert "status.json" in status["error"] and status["error"].endswith("."), status
    assert "pid" not in status  # nothing of a damaged file is trusted, above all not a process to signal
    assert not run.process_alive()


def test_a_whole_status_is_read_with_its_fields(tmp_path: Path):
    run = RunDir(tmp_path / "run")
    run.write_status("training", pid=1, pid_started=12.5, error=None, future_key=[1])
    assert run.read_status() == {"state": "training", "pid": 1, "pid_started": 12.5, "error": None,
                                 "future_key": [1]}


@pytest.mark.parametrize("status", [{"state": "training", "pid": 1}, {"state": "training", "pid": "1"},
                                    {"state": "training", "pid": True, "pid_started": 0.0},
                                    {"state": "training", "pid": 1, "pid_started": "0"}])
def test_a_pid_without_a_start_time_is_never_alive(status: dict):
    assert process_alive(status) is False  # pid 1 exists: only its unproven identity makes it not the job's


@pytest.mark.parametrize("shape", DAMAGED_METRICS)
def test_a_damaged_metrics_file_raises_one_sentence(tmp_path: Path, shape: str):
    run = RunDir(tmp_path / "run")
    write(run.metrics, DAMAGED_METRICS[shape])
    with pytest.raises(ValueError, match=r"metrics\.json") as raised:
        run.read_metrics()
    assert type(raised.value) is ValueError and str(raised.value).endswith(".")


@pytest.mark.parametrize("shape", DAMAGED_EVENT_LINES)
def test_a_damaged_events_line_is_an_event_error(shape: str):
    with pytest.raises(EventError):
        parse(DAMAGED_EVENT_LINES[shape])


def test_the_events_tail_skips_damaged_lines_where_asked(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    good = '{"kind": "log", "message": "kept", "v": 2}'
    write(path, "\n".join([good, *DAMAGED_EVENT_LINES.values(), good]) + "\n")
    with pytest.raises(EventError):
        EventTail(path).read_new()
    bad: list[str] = []
    events = EventTail(path).read_new(bad)
    assert [event.message for event in events] == ["kept", "kept"]
    assert len(bad) == len(DAMAGED_EVENT_LINES)


@pytest.mark.parametrize("text", ["{x", "[1]", '{"models": "a"}', '{"models": [1]}'])
def test_a_damaged_list_of_recent_models_is_forgotten(tmp_path: Path, text: str):
    write(tmp_path / RECENT_FILE, text)
    assert recent_models(tmp_path) == []
