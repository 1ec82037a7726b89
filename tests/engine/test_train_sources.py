"""Several datasets in one headless run (`python launch.py train`, or in this process the function it calls; a tiny
real Llama): files of different formats, and a dataset folder written by save_to_disk, with the rows of each in the
run log. The saved folder's test keeps its own process: it sets HF_DATASETS_CACHE, which datasets reads at import."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jobs.events import final_status, read_events
from engine.jobs.rundir import RunDir
from tests.cli import launch, train_in_process, write_config
from tests.unit.test_sources import alpaca, openai


def trained(result, run: RunDir) -> str:
    """The run's log (stdout), once the run completed with its weights saved."""
    assert result.returncode == 0, result.stderr[-2000:]
    assert final_status(read_events(run.events)).state == "completed"
    assert (run.adapter / "adapter_model.safetensors").is_file()
    return result.stdout


def test_two_files_of_different_formats_train_in_one_run(tiny_model: Path, tmp_path: Path):
    a, b = alpaca(tmp_path / "a.json", 4), openai(tmp_path / "b.jsonl", 6)
    config = write_config(tmp_path / "run.yaml", tiny_model, a, tmp_path / "run",
                          data_options={"path": ["a.json", "b.jsonl"], "val_size": 0.2})
    log = trained(train_in_process(str(config)), RunDir(tmp_path / "run"))
    assert "dataset a.json: 4 rows (alpaca), b.jsonl: 6 rows (openai) — 10 rows, concatenated" in log
    assert "tokenized: 8 train / 2 validation rows" in log
    written = RunDir(tmp_path / "run").read_config()
    assert [source.path for source in written.data.sources()] == [str(a), str(b)]  # the run keeps both


def test_a_saved_dataset_folder_trains_beside_a_file_interleaved_with_a_fraction(tiny_model: Path, tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    from datasets import Dataset, DatasetDict

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))  # the engine process inherits it
    rows = [{"conversations": [{"from": "human", "value": f"saved {i}"}, {"from": "gpt", "value": f"out {i}"}]}
            for i in range(8)]
    DatasetDict({"train": Dataset.from_list(rows), "test": Dataset.from_list(rows[:2])}).save_to_disk(
        str(tmp_path / "saved"))
    alpaca(tmp_path / "a.json", 4)
    config = write_config(tmp_path / "run.yaml", tiny_model, tmp_path / "a.json", tmp_path / "run",
                          data_options={"path": ["a.json", {"path": "saved", "fraction": 0.5}], "mix": "interleave"})
    log = trained(launch("train", str(config)), RunDir(tmp_path / "run"))
    assert "dataset a.json: 4 rows (alpaca), saved: 4 of 8 rows (sharegpt) — 8 rows, interleaved" in log


def test_a_hub_dataset_id_offline_is_one_sentence_before_any_model_is_loaded(tiny_model: Path, tmp_path: Path):
    alpaca(tmp_path / "a.json", 2)
    config = write_config(tmp_path / "run.yaml", tiny_model, tmp_path / "a.json", tmp_path / "run",
                          data_options={"path": ["a.json", "someone/dataset-not-in-any-cache"]})
    result = train_in_process(str(config))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "someone/dataset-not-in-any-cache is neither a file or folder here" in errors[0]
    assert "HF_HUB_OFFLINE is set" in errors[0] and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "loading_model" not in RunDir(tmp_path / "run").events.read_text()  # failed while loading the data
