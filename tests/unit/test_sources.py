"""Several datasets in one run (engine/data/sources.py): each read in its own format, its fraction of rows drawn with
the seed, concatenated or interleaved; dataset folders (save_to_disk, data files) and hub ids as paths."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.config import DataConfig, DataSource
from engine.data.pipeline import inspect_dataset, load_datasets, load_rows
from engine.data.sources import drawn, mix, mix_order
from engine.jobs.failures import DataError


def alpaca(path: Path, n: int, tag: str = "a") -> Path:
    path.write_text(json.dumps([{"instruction": f"{tag}{i}", "output": f"answer {tag}{i}"} for i in range(n)]),
                    encoding="utf-8")
    return path


def openai(path: Path, n: int, tag: str = "b") -> Path:
    rows = [{"messages": [{"role": "user", "content": f"{tag}{i}"}, {"role": "assistant", "content": f"reply {i}"}]}
            for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def firsts(rows: list[dict]) -> list[str]:
    """The first turn's text of every row: which row of which file it is."""
    return [row["messages"][0]["content"] for row in rows]


# ---------------------------------------------------------------------------------------------- fractions


def test_a_fraction_takes_its_share_of_rows_drawn_with_the_seed_in_file_order():
    half = drawn(10, 0.5, random.Random("s"))
    assert len(half) == 5 == len(set(half)) and half == sorted(half)
    assert drawn(10, 0.5, random.Random("s")) == half  # the same seed draws the same rows
    assert {tuple(drawn(10, 0.5, random.Random(seed))) for seed in range(20)} != {tuple(half)}  # others differ
    assert drawn(4, 1, random.Random("s")) == [0, 1, 2, 3]
    assert drawn(3, 2, random.Random("s")) == [0, 0, 1, 1, 2, 2]  # every row twice, a repeat next to itself
    one_and_half = drawn(4, 1.5, random.Random("s"))
    assert len(one_and_half) == 6 and set(one_and_half) == {0, 1, 2, 3} and one_and_half == sorted(one_and_half)
    assert sorted(Counter(one_and_half).values()) == [1, 1, 2, 2]  # every row once, a drawn half of them twice
    assert len(drawn(5, 0.01, random.Random("s"))) == 1  # at least one row


# ---------------------------------------------------------------------------------------------- mixing


def test_concat_keeps_each_dataset_whole_and_in_order():
    assert mix([["a0", "a1"], ["b0", "b1", "b2"]], "concat", 1) == ["a0", "a1", "b0", "b1", "b2"]


def test_interleave_spreads_each_dataset_in_proportion_to_its_size_and_is_seeded():
    lists = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(30)], [f"c{i}" for i in range(20)]]
    mixed = mix(lists, "interleave", 7)
    assert sorted(mixed) == sorted(sum(lists, []))  # every row once
    for items in lists:  # each dataset keeps its own order
        assert [row for row in mixed if row[0] == items[0][0]] == items
    for start in range(0, 60, 6):  # any 6 rows in a row: 1 of a, 3 of b, 2 of c, give or take one
        window = Counter(row[0] for row in mixed[start:start + 6])
        assert abs(window["a"] - 1) <= 1 and abs(window["b"] - 3) <= 1 and abs(window["c"] - 2) <= 1, mixed
    assert mix(lists, "interleave", 7) == mixed  # the same seed, the same order
    orders = {tuple(mix(lists, "interleave", seed)) for seed in range(10)}
    assert len(orders) > 1  # the seed draws where each dataset starts
    assert mix_order([2, 1], "interleave", 3) in ([(0, 0), (1, 0), (0, 1)], [(1, 0), (0, 0), (0, 1)],
                                                  [(0, 0), (0, 1), (1, 0)])


def test_two_files_of_different_formats_load_with_their_counts_fractions_and_mix(tmp_path: Path):
    a, b = alpaca(tmp_path / "a.json", 4), openai(tmp_path / "b.jsonl", 8)
    cfg = DataConfig(path=[str(a), str(b)])
    both = load_datasets(cfg, seed=1)
    assert both.summary() == "dataset a.json: 4 rows (alpaca), b.jsonl: 8 rows (openai) — 12 rows, concatenated"
    assert firsts(both.rows) == [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(8)]
    assert load_rows(cfg, seed=1) == (both.rows, "alpaca+openai")

    cfg = DataConfig(path=[str(a), DataSource(path=str(b), fraction=0.5)], mix="interleave")
    mixed = load_datasets(cfg, seed=1)
    assert mixed.summary() == ("dataset a.json: 4 rows (alpaca), b.jsonl: 4 of 8 rows (openai) — 8 rows, "
                               "interleaved")
    texts = firsts(mixed.rows)
    taken = [text for text in texts if text.startswith("b")]
    assert len(taken) == 4 and taken == sorted(taken, key=lambda t: int(t[1:]))  # drawn, in file order
    assert [text for text in texts if text.startswith("a")] == ["a0", "a1", "a2", "a3"]
    assert all(texts[i][0] != texts[i + 1][0] for i in range(7)), texts  # 4 and 4: they alternate
    assert firsts(load_datasets(cfg, seed=1).rows) == texts  # deterministic
    assert any(firsts(load_datasets(cfg, seed=seed).rows) != texts for seed in range(2, 8))  # seeded


def test_each_dataset_takes_its_own_format_and_columns_and_max_samples_applies_to_each(tmp_path: Path):
    a = alpaca(tmp_path / "a.json", 5)
    renamed = tmp_path / "qa.jsonl"
    renamed.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"x{i}"}) + "\n" for i in range(5)))
    cfg = DataConfig(path=[str(a), DataSource(path=str(renamed), columns={"prompt": "question",
                                                                          "completion": "answer"})],
                     max_samples=2)
    mixed = load_datasets(cfg, seed=0)
    assert [(part.name, part.format, len(part.rows)) for part in mixed.parts] == [
        ("a.json", "alpaca", 2), ("qa.jsonl", "prompt_completion", 2)]
    with pytest.raises(DataError, match="^a.json has no column 'question' to use as 'prompt'"):
        load_rows(DataConfig(path=[str(a), str(renamed)], columns={"prompt": "question"}))  # data.columns: shared
    with pytest.raises(DataError, match="^qa.jsonl row 1 .*'instruction'"):  # a format of its own, checked on its rows
        load_rows(DataConfig(path=[str(a), DataSource(path=str(renamed), format="alpaca")]))


# ---------------------------------------------------------------------------------------------- dataset folders


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """datasets' cache (load_dataset of a folder writes its Arrow files there) in the test's folder."""
    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", cache)
    return cache


@pytest.mark.usefixtures("hf_cache")  # datasets writes its Arrow files in the test's folder
def test_a_saved_dataset_folder_is_a_path_and_its_split_is_chosen(tmp_path: Path):
    from datasets import Dataset, DatasetDict

    rows = [{"instruction": f"saved {i}", "output": f"out {i}"} for i in range(6)]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    DatasetDict({"train": Dataset.from_list(rows[:4]), "test": Dataset.from_list(rows[4:])}).save_to_disk(
        str(tmp_path / "dict"))
    loaded, fmt = load_rows(DataConfig(path=str(tmp_path / "one")))
    assert fmt == "alpaca" and firsts(loaded) == [f"saved {i}" for i in range(6)]
    assert len(load_rows(DataConfig(path=str(tmp_path / "dict")))[0]) == 4  # data.split: train by default
    mixed = load_datasets(DataConfig(path=[str(tmp_path / "one"), DataSource(path=str(tmp_path / "dict"),
                                                                             split="test")]), seed=0)
    assert mixed.summary() == "dataset one: 6 rows (alpaca), dict: 2 rows (alpaca) — 8 rows, concatenated"
    with pytest.raises(DataError) as caught:
        load_rows(DataConfig(path=str(tmp_path / "dict"), split="validation"))
    assert str(caught.value) == ("dict has no split 'validation' (it has train, test): set data.split (or the item's "
                                 "split).")
    report = inspect_dataset(DataConfig(path=str(tmp_path / "dict"), split="test"), sample_rows=1)
    assert (report["format"], report["rows"], report["sample_rows"]) == ("alpaca", 2, 1)


def test_a_folder_of_data_files_is_read_with_load_dataset(tmp_path: Path, hf_cache: Path):
    folder = tmp_path / "files"
    folder.mkdir()
    openai(folder / "part-1.jsonl", 3, tag="p")
    openai(folder / "part-2.jsonl", 2, tag="q")
    rows, fmt = load_rows(DataConfig(path=str(folder)))
    assert fmt == "openai" and sorted(firsts(rows)) == ["p0", "p1", "p2", "q0", "q1"]
    assert any(hf_cache.iterdir())  # the Arrow cache went where the test put it
    with pytest.raises(DataError, match="files: Unknown split"):
        load_rows(DataConfig(path=str(folder), split="test"))


def test_a_hub_dataset_id_offline_fails_at_once_with_one_sentence(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(DataError) as caught:
        load_rows(DataConfig(path="someone/dataset-not-in-any-cache"))
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert message == ("someone/dataset-not-in-any-cache is neither a file or folder here nor a dataset in the local "
                       "cache, and the Hugging Face hub cannot be reached (offline: HF_HUB_OFFLINE is set): check "
                       "data.path (relative to the config file), or connect and try again.")
