"""The Train tab's line on several datasets: each one's rows and format and the rows in all, under the first
dataset's inspection (train_data shows that one's preview, example and histogram). The others are measured by a
tokenizer-free `inspect-data` each, cached as the first one's answer is."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

from engine.datapaths import display_name
from webui.context import AppContext
from webui.i18n import message
from webui.jobs.commands import EngineCommandError, engine_cache, inspect_job
from webui.jobs.paths import PathError


def chosen(dataset: str | None, more: list[str] | None) -> list[str]:
    """The dataset, then the more datasets, each once (as the form writes them into data.path)."""
    return list(dict.fromkeys(name for name in [dataset, *(more or [])] if name))


def measured_here(ctx: AppContext, name: str) -> Path | None:
    """The file a dataset name means, checked by the boundary; None for a hub dataset or a dataset folder,
    which are read when the run starts (PathError for a name outside the boundary)."""
    path = Path(ctx.boundary.dataset(name))
    return path if path.is_absolute() and not path.is_dir() else None


def datasets_line(ctx: AppContext, names: list[str], first: dict[str, Any] | None, data_format: str,
                  request: gr.Request | None, maps: dict[str, dict[str, str]] | None = None) -> str:
    """'a.json: 40 rows (alpaca) · b.jsonl: 120 rows (openai) — 160 rows in all'; `first` is the first dataset's
    report (None where it is not measured here); `maps`: each dataset's column map, where it has one."""
    items, total, complete = [], 0, True
    for number, name in enumerate(names):
        report = first if number == 0 else other_report(ctx, name, data_format, request, (maps or {}).get(name))
        label = html.escape(display_name(name))
        if isinstance(report, str):
            items.append(f"<span class='wb-error'>{label}: {html.escape(report)}</span>")
            complete = False
        elif report is None:
            items.append(message(request, "msg.data_file_later", name=label))
            complete = False
        else:
            rows = int(report.get("rows") or 0)
            total += rows
            items.append(message(request, "msg.data_file", name=label, rows=f"{rows:,}", format=report.get("format")))
    line = " · ".join(items)
    return line + " — " + message(request, "msg.data_files_total", rows=f"{total:,}") if complete else line


def other_report(ctx: AppContext, name: str, data_format: str, request: gr.Request | None,
                 columns: dict[str, str] | None = None) -> dict[str, Any] | str | None:
    """Rows and format of a dataset after the first (no tokenizer: the token lengths shown are the first's), the
    sentence that says why there are none, or None for one that is read when the run starts."""
    try:
        path = measured_here(ctx, name)
        if path is None:
            return None
        if not path.is_file():
            return message(request, "msg.data_missing", name=path.name)
        return engine_cache(ctx.workspace).answer(inspect_job(path, data_format=data_format, columns=columns or None))
    except OSError as error:  # the file went, or cannot be read, while it was being looked at
        return f"cannot be read: {error.strerror or error.__class__.__name__}."
    except (EngineCommandError, PathError) as error:
        return str(error)
