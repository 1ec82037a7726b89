"""A model's config.json, found and read in one place, without transformers and without any download.

Plain Python (json, pathlib, and huggingface_hub's cache lookup imported when a hub id is asked): the web process
imports it to describe a model and count its parameters (webui/forms/models.py, engine/model/shapes.py), and the
engine reads the same file before it imports transformers (engine/model/imports.py: whether a run needs
bitsandbytes; engine/model/loading.py: whether the model ships its own code).

- `read(folder)`: the config.json in a folder, or None;
- `cached_folder(repo_id, revision)`: the hub cache's snapshot of a hub id, the one `revision` (main by default)
  points to, as transformers would load it offline;
- `model_config_json(name, revision)`: for the engine, where `name` is a local folder or a hub id. The web process
  never takes a name as a folder itself: its folders pass its path boundary first, and it calls `read` on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_JSON = "config.json"


def read(folder: Path) -> dict[str, Any] | None:
    """The config.json in `folder`; None where there is none, or it is not a JSON object."""
    try:
        config = json.loads((folder / CONFIG_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def cached_folder(repo_id: str, revision: str | None = None) -> Path | None:
    """The hub cache's snapshot folder holding hub id `repo_id`'s config.json at `revision` (main where None);
    None where it is not cached, or `repo_id` is not a hub id."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(repo_id, CONFIG_JSON, revision=revision)
    except ValueError:  # not a hub id (a folder that does not exist, say): whoever loads it says so
        return None
    return Path(path).parent if isinstance(path, str) else None  # else None (not cached) or a "no such file" mark


def model_config_json(name: str, revision: str | None = None) -> dict[str, Any] | None:
    """The config.json of `name`, a local folder or a hub id (from the hub cache); None where it is not there."""
    folder = Path(name).expanduser()
    found = folder if folder.is_dir() else cached_folder(name, revision)
    return read(found) if found is not None else None
