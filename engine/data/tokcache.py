"""Tokenized rows kept between runs: a later run on the same data, tokenizer and cutoff reads them instead of
tokenizing again (the page's Run again, a method tried after another, a resumed run).

The key is a hash of everything the rows depend on:
    - the data section of the config (paths, formats, columns, placeholders, reasoning, shares, val_size...),
      train.seed (fractions, mixing, the held-out split) and train.cutoff_len;
    - every dataset file: its resolved path, size and modification time (a folder: each file in it); a hub
      dataset id is not cached, since what it names can change without a local trace;
    - the tokenizer: its full serialisation (vocabulary, merges, normalisation, special tokens) and chat template;
    - the engine's own code (every engine/*.py), so a change in how rows are rendered or masked is never served
      from an older cache.

An entry is one .npz file (token ids as int32 arrays, no pickled objects), written aside and renamed into place
(engine.jobs.outputs), under WORKBENCH_CACHE_DIR/tokenized (default ~/.cache/peft-workbench; the page points it into
its workspace). The newest entries are kept, at most KEEP of them and MAX_BYTES together. An unreadable entry is
tokenized again and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from engine.__main__ import CACHE_ENV
from engine.config import RunConfig
from engine.data import pipeline as data
from engine.data import sources
from engine.jobs.outputs import clean_stale_partials, partial_path

log = logging.getLogger(__name__)

KEEP = 32
MAX_BYTES = 4 * 2**30  # 8 bytes a token: 4 GiB holds about 500M tokens
ENGINE = Path(__file__).resolve().parents[1]  # the whole engine package: its code decides what rows are


def tokenized_splits(cfg: RunConfig, tokenizer: Any, mixed: sources.Mixed | None = None
                     ) -> tuple[list[dict], list[dict], data.TokenStats, bool]:
    """engine.data.pipeline.build_splits's (train, val, stats), from the cache where an entry matches; the last item
    says whether it did. `tokenizer` must already have the chat template the run uses (ensure_chat_template); `mixed`:
    the datasets already read for this config, if any (build_splits)."""
    name = key(cfg, tokenizer)
    entry = load(name) if name else None
    if entry is not None:
        train, val, stats = entry
        return train, val, data.TokenStats(**stats), True
    train, val, stats = data.build_splits(cfg, tokenizer, mixed)
    if name:
        save(name, train, val, stats)
    return train, val, stats, False


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
        "peft-workbench"
    return Path(root) / "tokenized"


def key(cfg: RunConfig, tokenizer: Any) -> str | None:
    """The entry's name for this config and tokenizer, or None where the data cannot be fingerprinted locally."""
    files = []
    for source in cfg.data.sources():
        path = Path(source.path)
        if not path.exists():
            return None  # a hub dataset id
        files += [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in _files(path)]
    digest = hashlib.sha256()
    for part in (cfg.data.model_dump_json(), str(cfg.train.seed), str(cfg.train.cutoff_len), json.dumps(files),
                 _tokenizer_text(tokenizer), _engine_code()):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def _files(path: Path) -> list[Path]:
    path = path.resolve()
    return [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())


def _tokenizer_text(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    core = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else \
        json.dumps(tokenizer.chat_template, sort_keys=True)
    special = json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str)
    return "\0".join([type(tokenizer).__name__, core, template or "", special])


def _engine_code() -> str:
    digest = hashlib.sha256()
    for source in sorted(ENGINE.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def load(name: str) -> tuple[list[dict], list[dict], dict[str, Any]] | None:
    """(train rows, validation rows, token stats) of an entry, or None where there is none or it cannot be read."""
    path = cache_dir() / f"{name}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            stats = json.loads(str(saved["stats"]))
            splits = [_rows(saved, split) for split in ("train", "val")]
        os.utime(path)  # newest use: kept longest
        return splits[0], splits[1], stats
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        log.warning("tokenized rows in %s could not be read (%s): tokenizing again", path, error)
        return None


def save(name: str, train: list[dict], val: list[dict], stats: Any) -> Path | None:
    """Write an entry; where the cache folder cannot be written (read-only, full), say so and go on without it."""
    try:
        return _write(name, train, val, stats)
    except OSError as error:
        log.warning("tokenized rows not cached in %s (%s): the next run tokenizes again", cache_dir(), error)
        return None


def _write(name: str, train: list[dict], val: list[dict], stats: Any) -> Path:
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"stats": np.array(json.dumps(asdict(stats)))}
    for split, rows in (("train", train), ("val", val)):
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(r["input_ids"]) for r in rows], dtype=np.int64)
        arrays[f"{split}_ids"] = np.array([t for r in rows for t in r["input_ids"]], dtype=np.int32)
        arrays[f"{split}_labels"] = np.array([t for r in rows for t in r["labels"]], dtype=np.int32)
    target = folder / f"{name}.npz"
    clean_stale_partials(target)
    partial = partial_path(target)  # not *.npz: never an entry, nor pruned while it is written
    try:
        with partial.open("wb") as out:
            np.savez(out, **arrays)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _prune(folder)
    return target


def _rows(saved: Any, split: str) -> list[dict]:
    offsets = saved[f"{split}_offsets"].tolist()
    ids, labels = saved[f"{split}_ids"].tolist(), saved[f"{split}_labels"].tolist()
    if len(ids) != len(labels) or (offsets and offsets[-1] != len(ids)):
        raise ValueError("its arrays do not match")
    return [{"input_ids": ids[a:b], "labels": labels[a:b]} for a, b in pairwise(offsets)]


def _prune(folder: Path) -> None:
    """Keep the newest entries (by last use), at most KEEP of them and MAX_BYTES together; the newest always."""
    entries = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    total = 0
    for rank, entry in enumerate(entries):
        total += entry.stat().st_size
        if rank > 0 and (rank >= KEEP or total > MAX_BYTES):
            entry.unlink(missing_ok=True)
