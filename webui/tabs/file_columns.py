"""The Columns group of a tab that reads one dataset file as SFT reads it: the Evaluate tab's test set and the Compare
tab's dataset. Choosing the file reads it (the cached inspection their Start's check runs: no model, no tokenizer);
the group shows the file's own columns, opens by itself, saying why, where the file is refused for them, and each
pick (webui.components.columns.wire_column_fields) reads it again mapped. The picks are the job's data.columns.

The Train tab's group (webui/tabs/train/data.py) follows its own inspection instead: with the model's tokenizer,
the stage's names, several datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from webui.components.columns import ColumnsPanel, columns_hidden, columns_view, refusal_view, wire_column_fields
from webui.components.latest import LatestRequests
from webui.components.wiring import bind
from webui.context import AppContext
from webui.forms.columns import ColumnMaps, file_columns, for_stage
from webui.forms.prestart import RECENT_FAILURE_S
from webui.jobs.commands import EngineCommandError, engine_cache, inspect_job
from webui.jobs.paths import PathError

STAGE = "sft"  # the standard names these tabs' files map to: an evaluation and a comparison read SFT rows
READINGS = LatestRequests()  # only each visitor's newest reading of a chosen file shows


def chosen_map(maps: ColumnMaps | None, chosen: str) -> dict[str, str]:
    """The chosen file's picks, SFT's names only and no "(auto)" (a JSON widget may hold anything)."""
    own = for_stage(maps.get(chosen) if isinstance(maps, dict) else None, STAGE)
    return own if isinstance(own, dict) else {}


def unchanged(panel: ColumnsPanel) -> dict[Any, Any]:
    """Every output of the group skipped (an empty dict is read by gradio as one value for all its outputs: "didn't
    return enough output values")."""
    return {output: gr.skip() for output in panel.outputs}


def chosen_file_view(ctx: AppContext, panel: ColumnsPanel, chosen: str | None, maps: ColumnMaps | None,
                     request: gr.Request | None = None) -> dict[Any, Any]:
    """The group for the chosen file: its own columns, each dropdown holding its pick; opened, its note saying why,
    where the file is refused for its columns; hidden for what is no file in reach (a run's validation split, a
    folder, a hub dataset: read as they are; Start says what is wrong). Nothing where a newer reading of the same
    visitor was asked meanwhile (each pick is an event of its own, and the answers can come back out of order)."""
    try:
        path = Path(ctx.jobs.boundary.dataset(chosen)) if chosen else None
    except PathError:
        path = None
    if path is None or not path.is_file():
        return columns_hidden(panel)
    own = chosen_map(maps, chosen)
    newest = READINGS.ticket(getattr(request, "session_hash", None))
    try:
        report = engine_cache(ctx.workspace).answer(inspect_job(path, columns=own or None), wanted=newest,
                                                    failed_within_s=RECENT_FAILURE_S)
    except EngineCommandError as error:
        said, group = refusal_view(panel, chosen, own, STAGE, error, request)
        refused = group | {panel.note: f"<span class='wb-error'>{said}</span>"} if panel.note in group else group
        return refused if newest() else unchanged(panel)
    except OSError:  # the file went while it was being read
        return columns_hidden(panel) if newest() else unchanged(panel)
    if report is None or not newest():
        return unchanged(panel)
    return columns_view(panel, chosen, own, STAGE, file_columns(report), request)


def wire_chosen_file(ctx: AppContext, panel: ColumnsPanel, chosen: gr.Dropdown) -> None:
    """The group follows the tab's file: read when another is chosen, and again after each pick (the note then says
    whether it reads)."""
    reading = {"fn": bind(bind(chosen_file_view, ctx), panel), "inputs": [chosen, panel.maps], "outputs": panel.outputs}
    chosen.change(**reading, show_progress="hidden")
    wire_column_fields(panel, chosen, reading)
