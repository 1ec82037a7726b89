"""Where a dataset named in data.path lives: a file, a dataset folder, or a Hugging Face hub dataset id.

Plain Python (the web process checks paths with it): a hub id has the shape `name` or `org/name` and is not a
path that exists; a name that ends in a dataset file's extension (.json, .csv, ...) is always a file.
"""

from __future__ import annotations

import re
from pathlib import Path

DATA_EXTENSIONS = (".json", ".jsonl", ".csv", ".parquet", ".txt")  # dataset files the engine reads
# huggingface_hub's repo ids: `name` or `org/name`, word characters, '.', '-', at most 96 characters
HUB_ID = re.compile(r"\w[\w.-]*(/\w[\w.-]*)?")
HUB_ID_MAX = 96


def is_hub_id(text: str) -> bool:
    """Whether `text` has the shape of a hub id (it may still name a local folder)."""
    return len(text) <= HUB_ID_MAX and HUB_ID.fullmatch(text) is not None and ".." not in text and "--" not in text


def is_hub_dataset(text: str) -> bool:
    """Whether a data.path entry that is no existing path may be a hub dataset id (a file name never is)."""
    return is_hub_id(text) and Path(text).suffix.lower() not in DATA_EXTENSIONS


def resolve(path: str, base_dir: Path) -> str:
    """A data.path entry as the engine reads it: an absolute path as it is, a relative one against base_dir (the
    config file's folder), except a hub dataset id that names nothing there; an empty entry stays empty."""
    if not path:
        return path
    given = Path(path).expanduser()
    if given.is_absolute():
        return str(given)
    local = base_dir / given
    return path if not local.exists() and is_hub_dataset(path) else str(local)


def display_name(path: str) -> str:
    """How logs and the page name a dataset: a file's or folder's name, a hub id as it is."""
    return path if is_hub_dataset(path) and not Path(path).exists() else Path(path).name


def problems(paths: list[str], listed: bool) -> list[str]:
    """One sentence per data.path entry that cannot be read: empty, named twice, or no file or folder that
    exists and no hub id either (`listed`: data.path is a list, not one string)."""
    if listed and not paths:
        return ["data.path is an empty list: name at least one dataset."]
    issues = []
    seen: set[str] = set()
    for number, path in enumerate(paths, 1):
        where = f"data.path item {number}" if listed else "data.path"
        if not path.strip():
            issues.append(f"{where} is empty: name a dataset file, a dataset folder or a hub dataset id.")
        elif path in seen:
            issues.append(f"{where} names {path} again: list each dataset once (a fraction above 1 repeats rows).")
        elif not Path(path).exists() and not is_hub_dataset(path):
            issues.append(f"data.path {path} does not exist: check the path (relative to the config file).")
        seen.add(path)
    return issues
