"""`python launch.py compare` on a reduced comparison: three methods with their presets, a few steps each on the
tiny model, trained and evaluated in this process (the command's own child processes replaced by the job lifecycle
itself, as a training test does) to stay cheap. Every column is filled and equals what the run itself, or its
evaluation job, wrote; each preset learns; each method answers the prompt; a second command trains nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.compare import cli
from engine.compare import job as compare_job
from engine.compare.table import COLUMNS, EVALUATED, CompareDir
from engine.eval.metrics import changed_share
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, engine_process_state_kept, write_rows

METHODS = ["lora", "prompt", "ia3"]


def in_process(kind, job, _stop) -> int:
    with engine_process_state_kept():
        return run_job(kind, job.path)


@pytest.fixture(scope="module")
def compared(memorise_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], str]:
    folder = tmp_path_factory.mktemp("compare")
    data = write_rows(folder / "rows.json", MEMORISE * 4)
    config = {"model": {"name_or_path": str(memorise_model)}, "data": {"path": "rows.json", "val_size": 0.25},
              "train": {"max_steps": 4, "batch_size": 4, "save_steps": 100, "report_to": []}, "methods": METHODS,
              "eval_rows": 4, "max_new_tokens": 8, "prompts": ["Who are you?"],
              "output_dir": "compares/small", "runs_dir": "runs"}
    assert data.is_file()
    (folder / "small.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setattr(compare_job, "child_process", in_process)
    try:
        with engine_process_state_kept():
            code = cli.main([str(folder / "small.yaml")])
            again = cli.main([str(folder / "small.yaml")])
    finally:
        mp.undo()
    compare = CompareDir(folder / "compares" / "small")
    events = [json.loads(line) for line in compare.events.read_text(encoding="utf-8").splitlines()]
    said = [event["message"] for event in events if event["kind"] == "log"]  # the job's lines, both commands
    assert (code, again) == (0, 0), "\n".join(said[-20:])
    return folder, said, "\n".join(said)


def test_every_column_is_filled_from_the_runs_own_outputs(compared):
    folder, _, _ = compared
    compare = CompareDir(folder / "compares" / "small")
    table = json.loads(compare.table_json.read_text(encoding="utf-8"))
    assert [row["method"] for row in table["rows"]] == METHODS and table["completed"] == 3
    for row in table["rows"]:
        run = RunDir(folder / "runs" / f"small-{row['method']}")
        metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
        assert row["state"] == "completed" and row["run"] == str(run.path)
        for column in COLUMNS:
            if column.metric:
                assert row[column.key] is not None and row[column.key] == metrics[column.metric], column.key
        assert run.read_config().method.name == row["method"] and run.weights_dir() is not None
        losses = [loss for _, loss in table["curves"][row["method"]]]
        assert len(losses) == 4 and losses[-1] < losses[0], f"{row['method']}'s preset did not learn: {losses}"
    assert {row["method"]: row["merges"] for row in table["rows"]} == {"lora": True, "prompt": False, "ia3": True}
    estimate = json.loads((compare.path / "estimate.json").read_text(encoding="utf-8"))  # written before Start
    for row in table["rows"]:  # beside the measured peak (here the test process's own: trained in process)
        assert row["estimated_peak_mb"] == estimate["methods"][row["method"]]["total_mb"] > 0
        assert row["estimate_error_percent"] is not None
    assert table["best"]["trainable_params"] == ["ia3"]
    base = json.loads(compare.evaluation("base").metrics.read_text(encoding="utf-8"))
    assert table["base"]["exact_match"] == base["models"]["base"]["exact_match"] and base["rows"] == 4

    def general(method: str, name: str) -> list[str]:
        lines = compare.evaluation(method).general.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["answers"][name] for line in lines]

    for row in table["rows"]:  # the evaluation columns: what the method's evaluation job wrote
        name = f"small-{row['method']}"
        evaluation = json.loads(compare.evaluation(row["method"]).metrics.read_text(encoding="utf-8"))
        assert evaluation["rows"] == 4 and list(evaluation["models"]) == [name]
        for column in EVALUATED:
            if column.key != "general_changed":
                assert row[column.key] is not None and row[column.key] == evaluation["models"][name][column.evaluated]
        assert row["general_changed"] == changed_share(general("base", "base"), general(row["method"], name))
    answers = table["answers"]
    assert [item["prompt"] for item in answers] == ["Who are you?"]
    assert set(answers[0]["answers"]) == {"base", *METHODS}  # every method's answer, and the base's
    assert "**Who are you?**" in compare.table_md.read_text(encoding="utf-8")
    assert compare.table_md.read_text(encoding="utf-8").count("| completed |") == 3
    assert len(compare.table_csv.read_text(encoding="utf-8").splitlines()) == 4


def test_the_table_is_logged_as_it_fills_and_a_second_command_trains_nothing(compared):
    folder, said, text = compared
    assert "lora: training in" in text and "ia3: training in" in text
    assert said.index(next(line for line in said if line.startswith("memory before Start on"))) < said.index(
        next(line for line in said if "training in" in line))  # the estimate per method is printed first
    assert sum("completed earlier" in line for line in said) == 3  # the second command
    assert sum("evaluating in" in line for line in said) == 4  # the base once, each method once, not again
    events = [json.loads(line) for line in (folder / "compares" / "small" / "events.jsonl").read_text(
        encoding="utf-8").splitlines()]
    states = [event["state"] for event in events if event["kind"] == "status"]
    assert states.count("completed") == 2 and states.count("evaluating") == 4
