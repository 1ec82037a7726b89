"""The Train form's column maps (data.columns): which of a dataset file's own columns is each standard name, as
H2O LLM Studio's "Prompt Column / Answer Column" and LLaMA-Factory's per-dataset `columns` say it.

The form keeps one map per chosen dataset, `{dataset: {standard: column}}` (the COLUMNS option, a hidden JSON the
Columns group's dropdowns edit), keyed by the dataset as the form names it. `data_columns` writes them into the one
typed config: one dataset's map is data.columns; of several, each map is that dataset's own (a data.path item
`{path, columns}`), so a map never reaches a file it was not made for. `column_maps` reads them back from a config.
Only the chosen stage's standard names are written (engine.config_stage.stage_columns: SFT's or a preference
file's), as only the chosen stage's options are. No gradio: webui/components/columns.py draws the group.
"""

from __future__ import annotations

from typing import Any

from engine.config import DataConfig
from engine.config_stage import PAIR_COLUMNS, SFT_COLUMNS, stage_columns

ColumnMaps = dict[str, dict[str, str]]  # dataset (as the form names it) -> {standard name: the file's column}
AUTO = ""  # a dropdown's "(auto)": the standard name is not mapped (the file's own column of that name is read)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(SFT_COLUMNS + PAIR_COLUMNS))  # one dropdown each; a stage shows its own
# The inspection's refusals the Columns group answers (the group opens by itself, its dropdowns offering the row's
# columns, each refusal's `file_columns` value), and whether they name the columns as mapped (the engine checks the
# format of rows already renamed; a missing column is looked for among the file's own): a file matching no format,
# a row lacking a field its format needs, a map naming a column the file lacks.
REFUSALS = {"engine.data.no_format": True, "engine.data.missing_field": True, "engine.data.no_such_column": False}


def shown_names(stage: str) -> dict[str, bool]:
    """standard name -> whether its dropdown shows under `stage` (SFT's names, or a preference stage's)."""
    names = set(stage_columns(stage or "sft"))
    return {name: name in names for name in NAMES}


def for_stage(own: Any, stage: str) -> Any:
    """A dataset's map with only the names `stage` reads and no "(auto)" left in it; a value that is no map as it is
    (the schema says why)."""
    if not isinstance(own, dict):
        return own
    names = stage_columns(stage or "sft")
    return {standard: column for standard, column in own.items() if standard in names and column != AUTO}


def stage_maps(maps: Any, stage: str) -> ColumnMaps:
    """The maps as the inspection reads them: each dataset's names `stage` reads, datasets without any left out
    (and the whole where it is no map: the config preview says why)."""
    found: ColumnMaps = {}
    for name, own in (maps.items() if isinstance(maps, dict) else ()):
        kept = for_stage(own, stage)
        if isinstance(kept, dict) and kept and all(isinstance(column, str) for column in kept.values()):
            found[name] = kept
    return found


def data_columns(maps: Any, data_path: Any, stage: str) -> tuple[Any, Any]:
    """(data.columns, data.path) for the chosen datasets (`data_path`: one path, or a list) and the form's maps:
    one dataset's map is data.columns; of several, each dataset with a map becomes an item {path, columns}."""
    maps = {} if maps is None else maps
    if not isinstance(maps, dict):
        return maps, data_path  # an API caller's value: the schema says why
    if not isinstance(data_path, list):
        return for_stage(maps.get(data_path) or {}, stage), data_path
    items = []
    for item in data_path:
        own = for_stage(maps.get(item), stage) if isinstance(item, str) else None
        items.append({"path": item, "columns": own} if own else item)
    return {}, items


def column_maps(data: DataConfig) -> ColumnMaps:
    """The form's maps of a config: each dataset's columns (its own, else data.columns), keyed by its path."""
    return {source.path: dict(source.columns) for source in data.sources() if source.columns}


def renamed(maps: Any, rename: Any) -> Any:
    """The maps keyed by `rename(dataset)` (str -> str: the path an engine process gets); a value that is no map as
    it is (the schema says why)."""
    if not isinstance(maps, dict):
        return maps
    return {rename(name): own for name, own in maps.items() if name}


def refused_columns(said: Any, own: dict[str, str] | None = None) -> list[str] | None:
    """The file's columns an inspection's refusal names (its `file_columns` value), where it is one the Columns
    group answers (REFUSALS); None for any other. Where the refusal read the rows as mapped by `own` (the map the
    inspection read), each standard name is the file's column it was mapped from."""
    key = getattr(said, "key", None)
    if key not in REFUSALS:
        return None
    named = getattr(said, "values", {}).get("file_columns")
    if not isinstance(named, list):
        return None
    back = own if REFUSALS[key] and own else {}
    return list(dict.fromkeys(back.get(str(column), str(column)) for column in named))


def file_columns(report: dict[str, Any]) -> list[str]:
    """The columns of the file an inspection read: its own, where the report shows them mapped (a pairs file)."""
    return [str(column) for column in report.get("file_columns") or report.get("columns") or []]


def column_choices(columns: list[str], chosen: str, auto: str) -> list[tuple[str, str]]:
    """A dropdown's choices: "(auto)" (`auto`, in the visitor's language), then the file's columns; and the chosen
    one where the file does not have it (a loaded config's: the inspection says so)."""
    listed = [(auto, AUTO), *((column, column) for column in columns)]
    return listed + [(chosen, chosen)] if chosen and chosen not in columns else listed
