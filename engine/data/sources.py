"""The datasets of one run: read each (a file, a dataset folder or a hub dataset), take its share of rows, and
mix them into one list.

Contract:
- `load(cfg, seed, load_one)` loads every dataset of `cfg.path` (DataConfig.sources) with `load_one`
  (engine.data.pipeline's: read with `read_source`, first max_samples rows, normalised with the dataset's own format
  and columns), takes its `fraction` of the rows and returns a `Mixed`: the rows of each dataset (`parts`)
  and, in `rows`, all of them concatenated or interleaved (`cfg.mix`).
- A fraction below 1 takes round(rows x fraction) rows (at least one) drawn with `seed`; above 1, every row
  as many whole times as it holds and a drawn share of the rows once more (1.5: each row once, half of them
  twice). Taken rows keep the dataset's order, a repeated row next to itself.
- interleave spreads each dataset evenly over the whole, in proportion to its size, each in its own order:
  row j of a dataset of n rows sits at (j + phase) / n of the way, the phase drawn with `seed`.
- A dataset folder written by `save_to_disk` is read with `datasets.load_from_disk`; any other folder (data
  files) and a hub dataset id with `datasets.load_dataset`, taking `split`. Offline, a hub id that is not in
  the cache fails at once with one sentence. Every problem is a DataError naming the dataset.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.config import DataConfig, Mix
from engine.data.readers import read_records
from engine.data.sample import Sample, read_sample
from engine.datapaths import DATA_EXTENSIONS, display_name
from engine.jobs.failures import DataError
from engine.sentences import said

LoadOne = Callable[[DataConfig], tuple[list[dict], str]]  # config of one dataset -> (its rows, its format)
SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what DatasetDict / Dataset.save_to_disk write


@dataclass(frozen=True)
class Part:
    """One dataset's rows as the run uses them."""

    name: str
    format: str
    rows: list[dict]
    read: int  # rows read (after max_samples), before its fraction was taken

    def count(self) -> str:
        """'40 rows', or '20 of 40 rows' where a fraction changed the number."""
        if len(self.rows) == self.read:
            return said("engine.log.rows", n=len(self.rows))
        return said("engine.log.rows_of", n=len(self.rows), read=self.read)


@dataclass(frozen=True)
class Mixed:
    parts: list[Part]
    mix: Mix
    seed: int

    @cached_property
    def rows(self) -> list[dict]:
        return mix([part.rows for part in self.parts], self.mix, self.seed)

    @property
    def format(self) -> str:
        """The one format of every dataset, or each distinct one joined with '+'."""
        return "+".join(dict.fromkeys(part.format for part in self.parts))

    def summary(self) -> str:
        """The run log's line: 'dataset a.json: 40 rows, format alpaca', or per dataset and the whole for several."""
        if len(self.parts) == 1:
            part = self.parts[0]
            return said("engine.log.dataset", name=part.name, count=part.count(), format=part.format)
        each: Any = ""
        for part in reversed(self.parts):
            one = said("engine.log.dataset_part", name=part.name, count=part.count(), format=part.format)
            each = said("engine.log.comma", first=one, then=each) if each else one
        how = said("engine.log.concatenated" if self.mix == "concat" else "engine.log.interleaved")
        return said("engine.log.datasets", each=each, rows=len(self.rows), how=how)


def load(cfg: DataConfig, seed: int, load_one: LoadOne) -> Mixed:
    """Every dataset of `cfg.path` loaded by `load_one` and given its fraction of rows (the module's contract)."""
    parts = []
    for source in cfg.sources():
        name = display_name(source.path)
        rows, fmt = load_one(cfg.for_source(source))
        taken = [rows[i] for i in drawn(len(rows), source.fraction, random.Random(f"fraction {seed} {name}"))]
        parts.append(Part(name=name, format=fmt, rows=taken, read=len(rows)))
    return Mixed(parts=parts, mix=cfg.mix, seed=seed)


# ---------------------------------------------------------------------------------------------- shares and mixing


def drawn(count: int, fraction: float, rng: random.Random) -> list[int]:
    """The indices a fraction of `count` rows takes, in order (see the module's contract)."""
    if fraction == 1:
        return list(range(count))
    copies, extra = divmod(max(1, round(count * fraction)), count)
    return sorted([*range(count)] * copies + rng.sample(range(count), extra))


def mix_order(sizes: Sequence[int], how: Mix, seed: int) -> list[tuple[int, int]]:
    """(dataset, row) pairs in the order the mixed list holds them."""
    if how == "concat":
        return [(source, row) for source, size in enumerate(sizes) for row in range(size)]
    rng = random.Random(f"interleave {seed}")
    phases = [rng.random() for _ in sizes]
    keys = sorted(((row + phases[source]) / size, source, row) for source, size in enumerate(sizes)
                  for row in range(size))
    return [(source, row) for _, source, row in keys]


def mix(lists: Sequence[Sequence[Any]], how: Mix, seed: int) -> list[Any]:
    """The lists concatenated or interleaved (mix_order)."""
    return [lists[source][row] for source, row in mix_order([len(items) for items in lists], how, seed)]


# ---------------------------------------------------------------------------------------------- reading


def read_source(path: str, split: str) -> list[dict]:
    """Every row of a dataset file, dataset folder or hub dataset, as dicts."""
    if is_file(path):
        return read_records(Path(path))
    records = open_dataset(path, split).to_list()
    if not records:
        raise DataError(said("engine.data.empty_split", name=display_name(path), split=split))
    return records


def sample_source(path: str, split: str, max_rows: int) -> Sample:
    """The first rows and the row count of a dataset (what the inspection reads), in bounded memory: a file as
    engine/data/sample.py reads it; a dataset folder or hub dataset memory-mapped by `datasets`."""
    if is_file(path):
        return read_sample(Path(path), max_rows)
    dataset = open_dataset(path, split)
    if not len(dataset):
        raise DataError(said("engine.data.empty_split", name=display_name(path), split=split))
    return Sample(dataset.select(range(min(max_rows, len(dataset)))).to_list(), len(dataset))


def is_file(path: str) -> bool:
    """A data file (or a missing one, which the file readers name): not a dataset folder or a hub id."""
    return Path(path).is_file() or Path(path).suffix.lower() in DATA_EXTENSIONS


def open_dataset(path: str, split: str) -> Any:
    """A datasets.Dataset of one split: from a save_to_disk folder, a folder of data files, or the hub."""
    import datasets

    datasets.disable_progress_bars()
    name = display_name(path)
    folder = Path(path)
    saved = folder.is_dir() and any((folder / marker).is_file() for marker in SAVED_MARKERS)
    try:
        if not saved:
            return datasets.load_dataset(str(folder) if folder.is_dir() else path, split=split)
        loaded = datasets.load_from_disk(str(folder))
    except ConnectionError as error:
        raise DataError(unreachable(path, error)) from error
    except FileNotFoundError as error:
        raise DataError(said("engine.data.not_found", name=name, reason=first_line(error))) from error
    except ValueError as error:
        if "split" in str(error).lower():
            raise DataError(f"{name}: {first_line(error)}: set data.split (or the item's split).") from error
        raise DataError(f"{name} cannot be read as a dataset ({first_line(error)}): check data.path.") from error
    return pick_split(loaded, split, name)


def pick_split(dataset: Any, split: str, name: str) -> Any:
    """The split of a saved DatasetDict; a saved Dataset is its one split whatever data.split says."""
    if not hasattr(dataset, "keys"):
        return dataset
    if split not in dataset:
        raise DataError(said("engine.data.no_split", name=name, split=split, splits=", ".join(dataset.keys())))
    return dataset[split]


def unreachable(path: str, error: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "offline: HF_HUB_OFFLINE is set" if offline else first_line(error)
    return (f"{path} is neither a file or folder here nor a dataset in the local cache, and the Hugging Face hub "
            f"cannot be reached ({why}): check data.path (relative to the config file), or connect and try again.")


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
