"""The short engine commands the page runs and waits for: `inspect-data` (one JSON object on stdout, or exit 2 with
one sentence) and `plan` (the trainable count, equal to what training then trains)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import launch, train_in_process, write_config, write_rows
from tests.unit.test_data import GOOD, assert_one_sentence, engine_cli, write


def test_cli_prints_json(tmp_path: Path, tiny_model: Path) -> None:
    path = write(tmp_path / "qa.csv", [{"question": "Who are you?", "answer": "I am a helpful assistant."}])
    done = engine_cli(
        "--data", str(path), "--columns", '{"prompt": "question", "completion": "answer"}',
        "--model", str(tiny_model), "--cutoff-len", "8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "prompt_completion" and report["rows"] == 1
    assert report["columns"] == ["question", "answer"]
    assert report["over_cutoff"] == 1 and len(report["lengths"]) == 1


def test_cli_bad_file_exits_2_with_the_sentence(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.jsonl", [GOOD, {"instruction": "Hi", "output": ""}])
    done = engine_cli("--data", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    message = done.stderr.strip()
    assert "broken.jsonl row 2" in message and "'output'" in message
    assert_one_sentence(message)


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    """`launch.py inspect-data ... | head -c 10`: the pipe closes before the report is written; the command ends
    with 141 (as a shell reports SIGPIPE) and says nothing on stderr, where it printed BrokenPipeError's traceback."""
    import subprocess
    import sys

    from tests.unit.test_data import ROOT

    path = write(tmp_path / "good.jsonl", [GOOD])
    python = ROOT / ".venv" / "bin" / "python"
    process = subprocess.Popen([str(python if python.exists() else sys.executable), "launch.py", "inspect-data",
                                "--data", str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.stdout.close()  # the reader is gone before the command writes its report
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141 and stderr == "", stderr


def test_plan_counts_what_training_trains(tiny_model, tmp_path):
    """`plan` builds the model on the meta device; its count must equal the real run's."""
    data = write_rows(tmp_path / "data.json", [{"instruction": "a", "output": "b"}] * 4)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run", method={"name": "lora"},
                          train={"max_steps": 1})
    planned = launch("plan", str(config))
    assert planned.returncode == 0, planned.stderr
    # bitsandbytes' "Failed to load CPU gemm_4bit_forward ... pip install kernels" and transformers' FutureWarning
    # once reached plan's terminal: nothing a user can act on
    assert planned.stderr == "", planned.stderr
    plan = json.loads(planned.stdout)
    trained = train_in_process(str(config))  # `launch.py train`'s function in this process: its count is the subject
    assert trained.returncode == 0, trained.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert plan["trainable_params"] == metrics["trainable_params"] > 0
    assert plan["total_params"] == metrics["total_params"]
