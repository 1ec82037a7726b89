"""Every reader of a job file checks its shape: a status.json, metrics.json or events line that is not JSON, or
holds a list, a string, a number, a text pid, reads as damaged with one sentence naming what is wrong, never as an
AttributeError or TypeError in the reader (issue 24, item 7); exports pack regular files only, and only a process
proven to be a job's is signalled (item 9). Files only: no process is started, and no signal sent."""

from __future__ import annotations

import json
import os
import signal
import zipfile
from pathlib import Path

import pytest

from engine.jobs.events import EventError, EventTail, parse
from engine.jobs.outputs import links_in, zip_folder
from engine.jobs.rundir import RunDir, process_alive, process_identity
from webui.context import AppContext
from webui.forms.models import RECENT_FILE, recent_models
from webui.jobs.runs import RunError
from webui.jobs.scheduler import TRAIN

# name -> the text of a damaged JSON file: each shape the audit wrote, and a few of the same family
DAMAGED_JSON = {
    "not JSON": "{not json",
    "empty": "",
    "a list": "[1, 2]",
    "a string": '"training"',
    "a number": "42",
    "null": "null",
    "an empty object": "{}",
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
    **{k: v for k, v in DAMAGED_JSON.items() if k != "an empty object"},  # {}: no figures yet
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


def test_a_zip_packs_regular_files_only(tmp_path: Path):
    """A link to a file or a folder outside (issue 24, item 9) is neither packed nor followed."""
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "secret")
    folder = tmp_path / "adapter"
    write(folder / "adapter_config.json", "{}")
    write(folder / "sub" / "kept.txt", "kept")
    (folder / "link.txt").symlink_to(outside / "secret.txt")
    (folder / "linked").symlink_to(outside)
    with zipfile.ZipFile(zip_folder(folder, tmp_path / "a.zip")) as archive:
        assert sorted(archive.namelist()) == ["a/adapter_config.json", "a/sub/kept.txt"]
    assert links_in(folder) == [folder / "link.txt", folder / "linked"]


@pytest.fixture
def signals(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every signal the code under test sends, recorded instead of sent (no real process is ever signalled)."""
    sent: list[tuple] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append(("kill", pid, sig)))
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append(("killpg", pid, sig)))
    return sent


@pytest.mark.parametrize("status", [
    {"state": "training", "pid": 1},  # the audit's: pid 1 without a start time
    {"state": "training", "pid": 1, "pid_started": 12.0},  # a start time that is not pid 1's
    {"state": "training", "pid": "1", "pid_started": 12.0},
], ids=["no start time", "another start time", "a text pid"])
def test_a_process_not_proven_to_be_the_jobs_is_never_signalled(tmp_path: Path, signals: list, status: dict):
    """Stop and Cancel signal a pid only when its start time is the one the job recorded (issue 24, item 9); a
    status that names a pid without it is damaged, and holds no slot of the queue."""
    ctx = AppContext.create(tmp_path / "ws")
    run = ctx.runs.runs_dir / "intruder"
    write(run / "status.json", json.dumps(status))
    assert ctx.jobs.send_signal(RunDir(run), signal.SIGKILL, group=True) is False
    with pytest.raises(RunError, match="not training"):
        ctx.runs.stop("intruder")
    ctx.runs.cancel("intruder")  # only the folder goes
    assert signals == [] and not run.exists()
    write(run / "status.json", json.dumps(status))
    assert ctx.runs.active() is None and ctx.jobs.holders(TRAIN.lane) == []
    info = ctx.runs.info("intruder")
    if "pid_started" not in status:
        assert info.damaged and "start time" in info.error


def test_the_jobs_own_process_is_signalled(tmp_path: Path, signals: list):
    """The positive case: the pid and start time of a live process (this one) match, so Stop signals it."""
    ctx = AppContext.create(tmp_path / "ws")
    run = RunDir(ctx.runs.runs_dir / "mine")
    run.write_status("training", **process_identity())
    assert ctx.jobs.send_signal(run, signal.SIGTERM) is True
    assert signals == [("kill", os.getpid(), signal.SIGTERM)]


@pytest.mark.parametrize("options", [[], ["--overwrite"]])
@pytest.mark.parametrize("found", ["adapter", "config"])
def test_training_into_a_folder_the_engine_did_not_write_is_refused(tmp_path: Path, capsys, options, found: str):
    """`launch.py train` into a folder of the user's own (issue 24, item 9): refused in one sentence; with
    --overwrite too; no file in it replaced or deleted. (Refused before any process or model is started.)"""
    from engine.train.recipe import main

    data = tmp_path / "d.jsonl"
    write(data, '{"instruction": "a", "output": "b"}\n')
    folder = tmp_path / "mine"
    kept = {"adapter": ["adapter/adapter_model.safetensors", "model/config.json", "checkpoints/notes.txt"],
            "config": ["config.yaml", "events.jsonl"]}[found]
    for name in kept:
        write(folder / name, "mine: 1\n")
    config = tmp_path / "run.yaml"
    write(config, json.dumps({"model": {"name_or_path": "org/model"}, "data": {"path": str(data)},
                              "output_dir": str(folder)}))
    assert main([str(config), *options]) == 2
    error = capsys.readouterr().err
    assert "holds files but no run of PEFT Workbench" in error and error.count("\n") == 1, error
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(kept)
    assert all((folder / name).read_text() == "mine: 1\n" for name in kept)
