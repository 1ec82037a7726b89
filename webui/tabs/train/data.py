"""The Train tab's dataset inspection: summary, preview table, rendered example, token-length histogram and
the over-cutoff line, from the `inspect-data` engine process's report (cached on disk for every visitor)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from webui.components.columns import columns_hidden, columns_view, refusal_view
from webui.components.latest import LatestRequests
from webui.context import AppContext
from webui.forms.columns import file_columns, stage_maps
from webui.forms.datasets import column_widths, example_segments, length_histogram, preview_rows
from webui.forms.fields import CUTOFF_LEN
from webui.forms.models import model_folder
from webui.i18n import message, words
from webui.jobs.commands import EngineCommandError, engine_cache, inspect_job
from webui.jobs.paths import PathError
from webui.tabs.train.panels import DataPanel
from webui.tabs.train.placeholders import placeholder_view
from webui.tabs.train.sources import chosen, datasets_line, measured_here

FITS_COLOUR, OVER_COLOUR = "#4c78a8", "#e45756"  # the token-length histogram's two bar colours


def summary_only(panel: DataPanel, summary: str) -> dict[Any, Any]:
    """The summary line (or an error, or "inspecting") with the rest of the inspection hidden."""
    hidden = gr.update(visible=False)
    return {panel.summary: summary, panel.preview: hidden, panel.example: hidden, panel.rejected: hidden,
            panel.histogram: hidden, panel.over_cutoff: hidden}


def summary_no_columns(panel: DataPanel, summary: str) -> dict[Any, Any]:
    """summary_only, with the Columns group hidden too: no file whose columns are known."""
    return summary_only(panel, summary) | columns_hidden(panel.columns)


# An inspection asked for later (a placeholder text typed, a column picked, on another event than the one still
# measuring) can answer first, from the cache; the older answer would then put the older form's texts back in the
# placeholder fields and its rows in the example.
INSPECTIONS = LatestRequests()


def inspect(ctx: AppContext, panel: DataPanel, model: str, dataset: str | None, more: list[str] | None,
            data_format: str, cutoff_len: float, overlength: str,
            request: gr.Request | None = None, replace: dict[str, str] | None = None,
            columns: Any = None, stage: str | None = None) -> Iterator[dict[Any, Any]]:
    """Summary, preview table, rendered example, length histogram, over-cutoff line (or the one error) of the
    dataset, and with more datasets a line of every one's rows (train_sources).

    An answer already measured (by any visitor, before any restart) shows at once; otherwise the page says
    "inspecting" while the `inspect-data` engine process runs. `replace` (data.replace) fills the placeholder
    fields of the placeholders the inspection finds; `columns` (the form's column maps, webui.forms.columns) maps
    each dataset's columns as `stage` reads them, and the Columns group offers the first one's columns. Where the
    page has asked for a newer inspection meanwhile, this one shows nothing."""
    newest = INSPECTIONS.ticket(getattr(request, "session_hash", None))
    for view in answers(ctx, panel, model, dataset, more, data_format, cutoff_len, overlength, request, replace,
                        columns, stage, newest):
        if newest():
            yield view


def answers(ctx: AppContext, panel: DataPanel, model: str, dataset: str | None, more: list[str] | None,
            data_format: str, cutoff_len: float, overlength: str, request: gr.Request | None,
            replace: dict[str, str] | None, columns: Any, stage: str | None,
            wanted: Callable[[], bool]) -> Iterator[dict[Any, Any]]:
    """inspect's views; no engine process is started once `wanted()` is false (a newer inspection waits)."""
    names = chosen(dataset, more)
    stage = stage or "sft"
    maps = stage_maps(columns, stage)
    cutoff_len = slider_cutoff(cutoff_len)
    if not names:
        yield summary_no_columns(panel, "")
        return
    dataset = names[0]
    own = maps.get(dataset, {})
    try:
        path = measured_here(ctx, dataset)
        if path is None:  # a hub dataset or a dataset folder: read when the run starts
            yield summary_no_columns(panel, datasets_line(ctx, names, None, data_format, request, maps))
            return
        if not path.is_file():
            yield summary_no_columns(panel, f"<div class='wb-error' id='wb-data-error'>"
                                       f"{html.escape(message(request, 'msg.data_missing', name=dataset))}</div>")
            return
        job = inspection_job(ctx, path, model, data_format, cutoff_len, overlength, replace, own)
        cache = engine_cache(ctx.workspace)
        report = cache.cached(job)
        if report is None:
            yield summary_only(panel, f"<span id='wb-data-busy'>{message(request, 'msg.inspecting')}</span>")
            report = cache.answer(job, wanted)
            if report is None:
                return
    except OSError as error:  # the file went, or cannot be read, while it was being looked at
        reason = f"{Path(dataset).name} cannot be read: {error.strerror or error.__class__.__name__}."
        yield summary_no_columns(panel, f"<div class='wb-error' id='wb-data-error'>{html.escape(reason)}</div>")
        return
    except (EngineCommandError, PathError) as error:  # a refusal for the file's columns opens the Columns group
        said, group = refusal_view(panel.columns, dataset, own, stage, error, request)
        yield summary_only(panel, f"<div class='wb-error' id='wb-data-error'>{html.escape(said)}</div>") | group
        return
    view = inspection_view(panel, report, cutoff_len, request) | placeholder_view(
        panel.placeholders, report, replace, request, every_dataset=len(names) == 1) | columns_view(
        panel.columns, dataset, own, stage, file_columns(report), request)
    if len(names) > 1:
        view[panel.summary] += "<br>" + datasets_line(ctx, names, report, data_format, request, maps)
    yield view


def slider_cutoff(cutoff_len: Any) -> Any:
    """The cutoff as its slider's box shows it: a number typed outside the range reaches the release that starts
    the inspection as typed (webui.components.widgets.clamp_typed_numbers), and the box raises it into the range
    on that same blur, so the summary, histogram and over-cutoff line measure the number the box shows."""
    low, high, _ = CUTOFF_LEN.slider
    return min(max(cutoff_len, low), high) if isinstance(cutoff_len, int | float) else cutoff_len


def inspection_job(ctx: AppContext, path: Path, model: str, data_format: str, cutoff_len: float, overlength: str,
                   replace: dict[str, str] | None, columns: dict[str, str] | None = None) -> Any:
    """The `inspect-data` job of a dataset file with the model's tokenizer (local, or the hub cache's copy: no
    download), its columns mapped by `columns`: the one key its cached answer is found by."""
    local = ctx.local_model_dir(model) if model else None
    tokenizer = model_folder(model, local) if model else None
    return inspect_job(path, data_format=data_format, model=str(tokenizer) if tokenizer else None,
                       cutoff_len=int(cutoff_len or 0), overlength=overlength, replace=fills(replace),
                       columns=columns or None)


def cached_lengths(ctx: AppContext, model: str, dataset: str, data_format: str, cutoff_len: int, overlength: str,
                   replace: dict[str, str] | None, columns: dict[str, str] | None = None) -> list[int] | None:
    """The token lengths the inspection measured for the dataset with these settings, where it has (for any
    visitor, since any restart); None where it has not, or measures nothing here (no model, a hub dataset): nothing
    is started."""
    try:
        path = measured_here(ctx, dataset)
        if not model or path is None or not path.is_file():
            return None
        report = engine_cache(ctx.workspace).cached(
            inspection_job(ctx, path, model, data_format, cutoff_len, overlength, replace, columns))
    except (OSError, EngineCommandError, PathError):
        return None
    return (report or {}).get("lengths") or None


def fills(replace: dict[str, str] | None) -> dict[str, str]:
    """The placeholders the inspection fills: data.replace's non-empty texts (a JSON widget may hold anything)."""
    return {name: text for name, text in (replace or {}).items() if isinstance(text, str) and text}


def inspection_view(panel: DataPanel, report: dict[Any, Any], cutoff_len: float,
                    request: gr.Request | None) -> dict[Any, Any]:
    """The outputs of `inspect` for one inspect-data report."""
    headers, rows = preview_rows(report)
    lengths = report.get("lengths") or []
    over_text = over_cutoff_line(report, cutoff_len, request)
    return {
        panel.summary: summary_line(report, request),
        panel.preview: gr.update(value={"headers": headers, "data": rows}, column_widths=column_widths(headers, rows),
                                 visible=True),
        **pair_view(panel, report, request),
        panel.histogram: length_chart(lengths, int(cutoff_len or 0), request),
        panel.over_cutoff: gr.update(value=over_text, visible=bool(over_text)),
    }


def over_cutoff_line(report: dict[str, Any], cutoff_len: float, request: gr.Request | None) -> str:
    """How many measured rows are longer than cutoff_len, and where the file is bigger than what was measured,
    that the count is of its first rows ("8 rows" of a 24,656-row file read as a total)."""
    over = report.get("over_cutoff")
    if over is None:
        return ""
    key = "msg.over_cutoff_drop" if report.get("overlength") == "drop" else "msg.over_cutoff_truncate"
    line = message(request, key, n=over, cutoff=int(cutoff_len or 0))
    rows, measured = int(report.get("rows") or 0), int(report.get("sample_rows") or 0)
    if 0 < measured < rows:
        line += " " + message(request, "msg.over_cutoff_sampled", sample=f"{measured:,}", rows=f"{rows:,}")
    return line


def summary_line(report: dict[str, Any], request: gr.Request | None) -> str:
    """Format and row count; for a file bigger than the inspection's sample, how many rows were measured."""
    rows = int(report.get("rows") or 0)
    measured = int(report.get("sample_rows") or rows)
    summary = message(request, "msg.data_summary", format=report.get("format"), rows=f"{rows:,}")
    if measured < rows:
        summary += " · " + message(request, "msg.data_sample", sample=f"{measured:,}")
    if report.get("cut_rows"):  # rows of megabytes: measured on their first megabyte (engine/data/sample.py)
        summary += " · " + message(request, "msg.data_cut", n=f"{int(report['cut_rows']):,}")
    return summary


def example_view(report: dict[str, Any], request: gr.Request | None) -> Any:
    """The rendered example, its trained spans labelled (and coloured) in the visitor's language."""
    trained, cut = message(request, "msg.trained"), message(request, "msg.beyond_cutoff")
    labels = {"trained": trained, "cut": cut}
    segments = [(text, labels.get(label, label)) for text, label in example_segments(report)]
    shown = {label for _, label in segments}  # the legend lists the colours: only the kinds of piece shown
    colours = {label: colour for label, colour in ((trained, "green"), (cut, "gray")) if label in shown}
    return gr.update(value=segments, color_map=colours, visible=bool(report.get("example")))


def pair_view(panel: DataPanel, report: dict[str, Any], request: gr.Request | None) -> dict[Any, Any]:
    """The example: one row as the model sees it; for a preference file, its first pair's chosen and rejected
    sides side by side (each rendered through the template, the reply's trained span in green); a KTO row's one
    reply, labelled good or bad."""
    pair = report.get("pair")
    if not pair:
        return {panel.example: example_view(report, request), panel.rejected: gr.update(visible=False)}
    if "completion" in pair:
        label = message(request, "train.good_reply" if pair.get("label") else "train.bad_reply")
        shown = example_view({"example": pair["completion"]}, request)
        return {panel.example: {**shown, "label": label}, panel.rejected: gr.update(visible=False)}
    chosen = example_view({"example": pair["chosen"]}, request)
    rejected = example_view({"example": pair["rejected"]}, request)
    return {panel.example: {**chosen, "label": message(request, "train.chosen")},
            panel.rejected: {**rejected, "label": message(request, "train.rejected")}}


def length_chart(lengths: list[int], cutoff_len: int, request: gr.Request | None) -> Any:
    """The token-length histogram: every row in a bin, bins in numeric order, coloured by fits/over cutoff.

    Sort, colours and titles go with every update: gradio redraws the chart's axes and colour scale only
    when one of its options changes, and a new cutoff changes the legend title."""
    say = words(request)
    fits, over = say("plot.fits"), say("plot.over_cutoff")
    table = pd.DataFrame(length_histogram(lengths, cutoff_len, fits=fits, over=over),
                         columns=["tokens", "rows", "fits"])
    return gr.update(value=table, visible=bool(lengths), sort=list(dict.fromkeys(table["tokens"])),
                     color_map={fits: FITS_COLOUR, over: OVER_COLOUR}, x_title=say("plot.tokens"),
                     y_title=say("plot.rows"), color_title=say("plot.cutoff", cutoff=cutoff_len))
