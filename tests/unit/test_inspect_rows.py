"""Issue 24 item 11: the inspection is bounded by rows and by bytes. One row of many megabytes (a 50 MB row
once made the inspection's tokenizer pass its 2 GB cap, so a file that trains could not be inspected) is measured
on its first megabyte, and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import DataConfig
from engine.data import sample
from engine.data.pipeline import inspect_dataset


@pytest.mark.parametrize("suffix", ["jsonl", "json"])
def test_a_row_of_megabytes_is_measured_on_its_first_megabyte(tmp_path: Path, suffix: str):
    long = "the quick brown fox " * (3 * sample.ROW_CHARS // 20)  # 3 MB of text in one answer
    rows = [{"instruction": "Summarise this.", "output": long}] + [
        {"instruction": f"q{i}", "output": "a short answer"} for i in range(5)]
    path = tmp_path / f"long.{suffix}"
    text = "".join(json.dumps(row) + "\n" for row in rows) if suffix == "jsonl" else json.dumps(rows)
    path.write_text(text)

    taken = sample.read_sample(path)
    assert taken.rows == 6 and len(taken.records) == 6 and taken.cut == 1
    assert len(taken.records[0]["output"]) == sample.ROW_CHARS and taken.records[1] == rows[1]
    report = inspect_dataset(DataConfig(path=str(path)))
    assert report["rows"] == 6 and report["cut_rows"] == 1
    assert "Rows longer than 1 MB: 1, measured on their first 1 MB" in report["note"]


def test_the_bytes_bound_holds_however_long_the_rows(tmp_path: Path):
    path = tmp_path / "many-long.jsonl"
    row = json.dumps({"text": "x" * (sample.ROW_CHARS + 1000)}) + "\n"
    path.write_text(row * 20)  # 20 MB
    taken = sample.read_sample(path)
    assert taken.rows == 20 and taken.cut == len(taken.records)
    kept = sum(len(record["text"]) for record in taken.records)
    assert kept <= sample.SAMPLE_BYTES + sample.ROW_CHARS  # stops after the row that passes the bound


def test_the_page_says_which_rows_were_measured_on_their_first_megabyte():
    from webui.tabs.train.data import summary_line

    line = summary_line({"format": "alpaca", "rows": 6, "sample_rows": 6, "cut_rows": 1}, None)
    assert "rows longer than 1 MB: 1, measured on their first MB" in line


def test_a_model_without_a_tokenizer_is_one_sentence_the_page_can_show(tmp_path: Path, monkeypatch):
    """The Train tab shows this sentence under the dataset: it named a command-line flag ("check --model")."""
    from engine.cli import inspect_data

    def no_tokenizer(name: str) -> None:  # what AutoTokenizer raises for a folder without tokenizer files
        raise ValueError(f"Couldn't instantiate the backend tokenizer from one of: {name}")

    monkeypatch.setattr(inspect_data, "_load_tokenizer", no_tokenizer)  # without importing transformers here

    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    args = inspect_data._parser().parse_args(["--data", str(data), "--model", str(model)])
    said = inspect_data._inspect(DataConfig(path=str(data)), args)
    assert isinstance(said, str) and "--model" not in said and said.count(". ") == 0
    assert said.startswith(f"Cannot load a tokenizer from {model}") and "tokenizer files" in said


def test_with_a_model_each_row_is_normalised_once_and_a_bad_file_is_refused_before_the_tokenizer(
        tmp_path: Path, monkeypatch):
    """`inspect-data --model M` refuses a file whose rows no format reads before it loads the tokenizer (seconds),
    and measures the rows it read for that check: before, inspect_dataset normalised the sample twice, once
    without the tokenizer for the fast refusal and once with it."""
    from engine.cli import inspect_data
    from engine.data import formats
    from tests.tiny import build_tokenizer

    normalised: list[int] = []
    normalise = formats.normalise
    monkeypatch.setattr(formats, "normalise", lambda records, *rest: normalised.append(len(records)) or normalise(
        records, *rest))
    loaded: list[str] = []
    monkeypatch.setattr(inspect_data, "_load_tokenizer", lambda name: loaded.append(name) or build_tokenizer())
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "a short answer"}) + "\n" for i in range(3)))
    args = inspect_data._parser().parse_args(["--data", str(data), "--model", "m", "--cutoff-len", "64"])
    report = inspect_data._inspect(DataConfig(path=str(data)), args)
    assert normalised == [3] and loaded == ["m"]
    assert report["format"] == "alpaca" and len(report["lengths"]) == 3 and report["example"]["spans"]
    assert report == inspect_dataset(DataConfig(path=str(data)), build_tokenizer(), 64)  # what one call measures
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    said = inspect_data._inspect(DataConfig(path=str(odd)), args)
    assert isinstance(said, str) and "question" in said and loaded == ["m"]  # refused: no tokenizer was loaded


def test_a_preference_file_is_normalised_once_too(tmp_path: Path, monkeypatch):
    """The same for a file of pairs: one rendered pair and the lengths come from the pairs read for the refusal."""
    from engine.cli import inspect_data
    from engine.data import inspect_pairs
    from tests.tiny import build_tokenizer

    normalised: list[int] = []
    normalise = inspect_pairs.normalise_pairs
    monkeypatch.setattr(inspect_pairs, "normalise_pairs", lambda raw, name: normalised.append(len(raw)) or normalise(
        raw, name))
    monkeypatch.setattr(inspect_data, "_load_tokenizer", lambda _name: build_tokenizer())
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n"
                            for i in range(2)))
    args = inspect_data._parser().parse_args(["--data", str(data), "--model", "m"])
    report = inspect_data._inspect(DataConfig(path=str(data)), args)
    assert normalised == [2] and set(report["pair"]) == {"chosen", "rejected"} and len(report["lengths"]) == 2
