"""Tokenized rows cached between runs (engine.data.tokcache): a second run on the same data, tokenizer and cutoff reads
them; any change to what the rows depend on tokenizes again; a damaged or unwritable cache never fails a run."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from engine.config import RunConfig
from engine.data import pipeline as data
from engine.data import tokcache
from engine.data.tokens import ensure_chat_template
from engine.model.loading import load_tokenizer
from tests.cli import ROOT, launch, write_config

DATA = ROOT / "assets" / "datasets" / "identity_alpaca.json"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(tokcache.CACHE_ENV, str(folder))
    return folder / "tokenized"


def run_config(model, dataset, tmp_path, **train) -> RunConfig:
    return RunConfig.model_validate({"model": {"name_or_path": str(model)}, "method": {"name": "lora"},
                                     "data": {"path": str(dataset), "val_size": 0.1},
                                     "train": {"cutoff_len": 64, **train}, "output_dir": str(tmp_path / "run")})


def tokenizer_of(model):
    tokenizer = load_tokenizer(run_config(model, DATA, model).model)
    ensure_chat_template(tokenizer)
    return tokenizer


def test_a_second_run_reads_the_rows_the_first_tokenized(tiny_model, tmp_path, cache):
    cfg, tokenizer = run_config(tiny_model, DATA, tmp_path), tokenizer_of(tiny_model)
    train, val, stats, cached = tokcache.tokenized_splits(cfg, tokenizer)
    assert not cached and len(list(cache.glob("*.npz"))) == 1
    again = tokcache.tokenized_splits(cfg, tokenizer)
    assert again[3] and again[:2] == (train, val) and again[2] == stats
    assert (train, val, stats) == data.build_splits(cfg, tokenizer)  # what tokenizing afresh gives


@pytest.mark.usefixtures("cache")
def test_whatever_the_rows_depend_on_tokenizes_again(tiny_model, tmp_path):
    dataset = tmp_path / "rows.json"
    shutil.copy(DATA, dataset)
    tokenizer = tokenizer_of(tiny_model)
    assert not tokcache.tokenized_splits(run_config(tiny_model, dataset, tmp_path), tokenizer)[3]
    assert tokcache.tokenized_splits(run_config(tiny_model, dataset, tmp_path), tokenizer)[3]
    changes = [
        (run_config(tiny_model, dataset, tmp_path, cutoff_len=48), tokenizer),
        (run_config(tiny_model, dataset, tmp_path, seed=7), tokenizer),
        (RunConfig.model_validate({**run_config(tiny_model, dataset, tmp_path).model_dump(),
                                   "data": {"path": str(dataset), "val_size": 0.2}}), tokenizer),
    ]
    other_template = tokenizer_of(tiny_model)
    other_template.chat_template = other_template.chat_template.replace("<|im_start|>", "<|im_start|> ")
    changes.append((run_config(tiny_model, dataset, tmp_path), other_template))
    for cfg, tok in changes:
        assert not tokcache.tokenized_splits(cfg, tok)[3]
    dataset.write_text(dataset.read_text().replace("assistant", "helper"))  # the file changed
    os.utime(dataset, ns=(1, 1))
    assert not tokcache.tokenized_splits(run_config(tiny_model, dataset, tmp_path), tokenizer)[3]


def test_a_hub_dataset_is_not_cached(tiny_model, tmp_path):
    assert tokcache.key(run_config(tiny_model, "someone/some-dataset", tmp_path), tokenizer_of(tiny_model)) is None


def test_a_damaged_entry_is_tokenized_again_and_rewritten(tiny_model, tmp_path, cache, caplog):
    cfg, tokenizer = run_config(tiny_model, DATA, tmp_path), tokenizer_of(tiny_model)
    fresh = tokcache.tokenized_splits(cfg, tokenizer)
    entry = next(cache.glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:200])
    again = tokcache.tokenized_splits(cfg, tokenizer)
    assert not again[3] and again[:3] == fresh[:3]
    assert "could not be read" in caplog.text
    assert tokcache.tokenized_splits(cfg, tokenizer)[3]


def test_an_unwritable_cache_does_not_fail_the_run(tiny_model, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(tokcache.CACHE_ENV, str(blocker))
    cfg, tokenizer = run_config(tiny_model, DATA, tmp_path), tokenizer_of(tiny_model)
    assert not tokcache.tokenized_splits(cfg, tokenizer)[3]
    assert "not cached" in caplog.text


@pytest.mark.usefixtures("cache")
def test_the_command_line_says_when_rows_come_from_the_cache(tiny_model, tmp_path):
    lines = []
    for name in ("first", "second"):
        cfg = write_config(tmp_path / f"{name}.yaml", tiny_model, DATA, tmp_path / name)
        done = launch("train", str(cfg))
        assert done.returncode == 0, done.stderr[-2000:]
        lines.append(next(line for line in (tmp_path / name / "train.log").read_text().splitlines()
                          if "tokenized:" in line))
    assert "tokenized-rows cache" not in lines[0]
    assert "(read from the tokenized-rows cache, engine.data.tokcache)" in lines[1]


def test_the_cache_keeps_the_newest_entries_within_its_size(tiny_model, tmp_path, cache, monkeypatch):
    tokenizer = tokenizer_of(tiny_model)
    for cutoff in (40, 48, 56):
        tokcache.tokenized_splits(run_config(tiny_model, DATA, tmp_path, cutoff_len=cutoff), tokenizer)
        time.sleep(0.01)  # distinct modification times: the newest last
    entries = sorted(cache.glob("*.npz"), key=lambda p: p.stat().st_mtime)
    assert len(entries) == 3
    monkeypatch.setattr(tokcache, "MAX_BYTES", sum(e.stat().st_size for e in entries[1:]))
    tokcache.tokenized_splits(run_config(tiny_model, DATA, tmp_path, cutoff_len=48), tokenizer)  # read: now newest
    tokcache._prune(cache)
    assert not entries[0].exists() and entries[1].exists() and entries[2].exists()
    monkeypatch.setattr(tokcache, "MAX_BYTES", 1)  # smaller than any entry: the newest is still kept
    tokcache._prune(cache)
    assert [e.exists() for e in entries] == [False, True, False]
