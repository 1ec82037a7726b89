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
- `safetensors_params(folder)`: the exact parameter count from the safetensors headers (no weights read), which
  also finds a truncated weights file before anything loads it.

A config.json that is there but is not a JSON object, and a safetensors file shorter than its header says, raise
ModelFileError: one sentence naming the file, for the page's model summary and for the run that would load it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from engine.errors import UserError

CONFIG_JSON = "config.json"
REPLACE = "download or copy the model again"


class ModelFileError(UserError, ValueError):
    """A model folder's config.json or safetensors file that cannot be read; the message is one sentence."""


def read(folder: Path) -> dict[str, Any] | None:
    """The config.json in `folder`; None where there is none; ModelFileError where it is not a JSON object."""
    path = folder / CONFIG_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{folder.name}/{CONFIG_JSON} is not UTF-8 text: {REPLACE}.") from None
    except OSError:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{folder.name}/{CONFIG_JSON} is not valid JSON ({error.msg} at line {error.lineno}, "
                             f"column {error.colno}): {REPLACE}.") from None
    except RecursionError:
        raise ModelFileError(f"{folder.name}/{CONFIG_JSON} nests too deeply to be read: {REPLACE}.") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{folder.name}/{CONFIG_JSON} holds a JSON {type(config).__name__}, not an object: "
                             f"{REPLACE}.")
    return config


def safetensors_params(folder: Path) -> int | None:
    """The parameter count of the .safetensors files in `folder` from their headers (8-byte length + JSON), None
    where there are none; ModelFileError for a file that is shorter than its header says (truncated) or damaged."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length)) if 8 + length <= size else None
            tensors = {k: v for k, v in header.items() if k != "__metadata__"} if isinstance(header, dict) else None
            end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0) if tensors is not None else 0
            count = sum(_product(t["shape"]) for t in tensors.values()) if tensors is not None else 0
        except (OSError, struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError):
            tensors = None
        if tensors is None or 8 + length + end > size:
            raise ModelFileError(f"{folder.name}/{path.name} is truncated or damaged ({size:,} bytes, less than its "
                                 f"header describes, or no safetensors header): {REPLACE}.")
        total += count
    return total


def _product(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


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
