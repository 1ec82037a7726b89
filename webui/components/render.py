"""Pure functions from run state to what widgets display (HTML, data frames, text). No gradio here."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd

from engine.jobs.events import STATES
from engine.sentences import said
from webui.jobs.monitor import JobSnapshot
from webui.jobs.runs import RunInfo

LOSS_COLUMNS = ["step", "loss", "series"]
LOSS_TYPES = {"step": "int64", "loss": "float64", "series": "string"}
# (train, eval) colours of each overlaid run, in selection order: a dark and a light shade of one hue.
RUN_COLORS = [("#1d4ed8", "#60a5fa"), ("#c2410c", "#fb923c"), ("#15803d", "#4ade80"), ("#7e22ce", "#c084fc"),
              ("#b91c1c", "#f87171"), ("#0f766e", "#2dd4bf"), ("#be185d", "#f472b6"), ("#b45309", "#fbbf24"),
              ("#374151", "#9ca3af")]


def _english(key: str, **values: Any) -> str:
    from webui.i18n import message  # lazy: render itself stays free of gradio

    return message(None, key, **values)
STATE_COLORS = {"completed": "#16a34a", "stopped": "#ca8a04", "failed": "#dc2626", "queued": "#6b7280"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def engine_sentence(said: str, text: Callable[..., str]) -> str:
    """An engine's sentence (a failed job's error) in the language `text` speaks (webui.i18n.Words), where it has
    a message key; else as the engine wrote it."""
    word = getattr(text, "sentence", None)
    return word(said) if word is not None else str(said)


def state_label(state: str, text: Callable[..., str] = _english) -> str:
    """A run state in the visitor's language (an unknown state is shown as it is)."""
    return text(f"state.{state}") if state in STATES else state


def progress_html(snap: JobSnapshot | None, text: Callable[..., str] | None = None, idle: str = "msg.no_run") -> str:
    """A progress bar with step/total, elapsed, ETA and tokens/s, plus the state (and error, if any); without a
    run, the sentence keyed `idle`.

    `text(key, **values)` gives the words in the visitor's language (webui.i18n.message).
    """
    text = text or _english
    if snap is None:
        return f"<div class='wb-progress wb-idle'>{text(idle)}</div>"
    percent = 100.0 * snap.step / snap.total if snap.total else (100.0 if snap.state == "completed" else 0.0)
    color = STATE_COLORS.get(snap.state, "#2563eb")
    speed = f"{snap.tokens_per_s:,.0f}" if snap.tokens_per_s else "–"
    error = f"<div class='wb-error'>{html.escape(engine_sentence(snap.error, text))}</div>" if snap.error else ""
    return (
        f"<div class='wb-progress' data-state='{html.escape(snap.state)}'>"
        f"<div class='wb-progress-head'><b>{html.escape(snap.name)}</b> · <span class='wb-state'>"
        f"{html.escape(state_label(snap.state, text))}</span></div>"
        f"<div class='wb-bar'><div class='wb-fill' style='width:{percent:.1f}%;background:{color}'></div></div>"
        f"<div class='wb-progress-text'>"
        + text("msg.progress", step=f"<span class='wb-step'>{snap.step}</span>", total=snap.total or "?",
               elapsed=duration(snap.elapsed_s), eta=duration(None if snap.finished else snap.eta_s), speed=speed)
        + f"</div>{error}</div>"
    )


CURVE_LABELS = {"loss": "train", "eval_loss": "eval"}  # a training run's two curves, as the plot names them in English
NOT_PLOTTED = ("learning_rate", "grad_norm", "tokens_per_s")  # the trainer's bookkeeping: other scales, and the
# log (learning rate, grad norm) and the progress bar (tokens/s) show them already
EXTRA_COLORS = ["#0891b2", "#65a30d", "#9333ea", "#db2777", "#ea580c", "#4b5563"]  # curves a job adds


def curve_labels(text: Callable[..., str] | None = None) -> dict[str, str]:
    """A training run's two curves as the legend names them, in the language of `text` (webui.i18n.Words)."""
    return {name: text(f"plot.series_{label}") for name, label in CURVE_LABELS.items()} if text else CURVE_LABELS


def y_title_key(series: list[str] | dict[str, str], text: Callable[..., str] | None = None) -> str:
    """The locale key of a curves plot's y-axis title for the series it draws (series_name's, worded by `text`):
    "plot.loss" while every curve is a loss (train, eval), "plot.value" once another is drawn beside them (a
    preference run's rewards, an eval score), which "loss" would misname."""
    kinds = {name.rpartition(" · ")[2] for name in series}
    return "plot.loss" if kinds <= set(curve_labels(text).values()) else "plot.value"


def series_name(run: str, kind: str, several: bool) -> str:
    """The legend entry of one curve: "train"/"eval" (or the curve's own name) for a lone run, "RUN · train" when
    runs are overlaid."""
    return f"{run} · {kind}" if several else kind


def plotted_curves(snap: JobSnapshot,
                   labels: dict[str, str] = CURVE_LABELS) -> list[tuple[str, list[tuple[int, float]]]]:
    """(legend label, points) of every curve of a job that the plot draws, in the order the job first reported them:
    every named value but the trainer's bookkeeping (NOT_PLOTTED), so that a job's own curves (a reward margin, an
    eval score) are drawn with no change here; a training run draws train and eval loss, as it always has."""
    return [(labels.get(name, name), points) for name, points in snap.curves.items()
            if name not in NOT_PLOTTED and points]


def loss_frame(snaps: dict[str, JobSnapshot], text: Callable[..., str] | None = None) -> pd.DataFrame:
    """Long-format curves for a LinePlot: one series per (run, curve), named in the language of `text`; see
    `plotted_curves`.

    The columns are typed even when empty: the plot takes its axis types from the first frame it draws,
    and an empty object column reads as categorical (steps and losses on a point scale).
    """
    rows: list[tuple[int, float, str]] = []
    several, labels = len(snaps) > 1, curve_labels(text)
    for name, snap in snaps.items():
        for label, points in plotted_curves(snap, labels):
            rows += [(step, value, series_name(name, label, several)) for step, value in points]
    return pd.DataFrame(rows, columns=LOSS_COLUMNS).astype(LOSS_TYPES)


def loss_colors(snaps: dict[str, JobSnapshot], text: Callable[..., str] | None = None) -> dict[str, str]:
    """Series -> colour for the series loss_frame(snaps) holds: one hue per run, eval a lighter shade of it, and a
    colour of its own for every other curve a job reports.

    Every series drawn must be named here: gradio's plot fixes its colour domain when it builds the chart,
    and rebuilds the chart only when this map changes; a series missing from the domain is drawn invisible.
    """
    colors: dict[str, str] = {}
    several, labels = len(snaps) > 1, curve_labels(text)
    extra = 0
    for index, (name, snap) in enumerate(snaps.items()):
        shades = dict(zip(labels.values(), RUN_COLORS[index % len(RUN_COLORS)], strict=True))
        for label, _ in plotted_curves(snap, labels):
            if label not in shades:
                shades[label] = EXTRA_COLORS[extra % len(EXTRA_COLORS)]
                extra += 1
            colors[series_name(name, label, several)] = shades[label]
    return colors


def log_text(snap: JobSnapshot | None, stdout_tail: str = "", say: Any = None, last: int | None = None) -> str:
    """A job's log box: its events' lines (the `last` ones where given) in the language of `say` (a
    webui.i18n.Words: the engine's keyed lines worded, the rest as written; English without it), and for a failed
    job the last lines of the engine's output as the process printed them (a library's words stay its own)."""
    if snap is None:
        return ""
    word = getattr(say, "sentence", str)
    lines = snap.log[-last:] if last else snap.log
    text = "\n".join(word(line) for line in lines)
    if stdout_tail and snap.state == "failed":
        text += "\n" + word(said("engine.log.output_tail")) + "\n" + stdout_tail
    return text


RUN_HEADERS = ["run", "status", "method", "base model", "dataset", "train loss", "eval loss", "time", "kept"]


def runs_rows(infos: list[RunInfo], text: Callable[..., str] = _english) -> list[list[Any]]:
    def num(value: float | None) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) else "–"

    def status(info: RunInfo) -> str:
        if info.damaged:
            return text("runs.damaged", reason=info.error or "")
        if info.waits_for:  # queued for devices that other runs hold: which
            return text("runs.waits_for", state=state_label(info.state, text), devices=info.waits_for)
        return state_label(info.state, text)

    return [[i.name, status(i), method_cell(i, text), i.model.rsplit("/", 1)[-1], i.dataset, num(i.train_loss),
             num(i.eval_loss), duration(i.wall_s), kept(i.kept, text)] for i in infos]


def kept(best: dict[str, Any] | None, text: Callable[..., str] = _english) -> str:
    """Which weights a run saved where it kept its best checkpoint (metrics.json's best), and why; "–" otherwise."""
    if not best or not isinstance(best.get("step"), int) or not isinstance(best.get("value"), (int, float)):
        return "–"
    values = {"step": best["step"], "metric": best.get("metric"), "value": f"{best['value']:.4f}"}
    if best.get("stopped_early"):
        return text("runs.kept_early", end=best.get("ended_at"), **values)
    return text("runs.kept", **values)


def method_cell(info: RunInfo, text: Callable[..., str] = _english) -> str:
    """The method, with the stage where it is not plain SFT and the run it started from (model.adapter), so an
    SFT -> DPO chain reads in the table: "lora · dpo, from my-sft"."""
    cell = info.method if info.stage == "sft" else f"{info.method} · {info.stage}"
    if info.start:
        cell += text("runs.started_from", run=info.start.rstrip("/").rsplit("/", 1)[-1])
    return cell


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "columns":
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff_html(configs: dict[str, dict[str, Any]], text: Callable[..., str] = _english) -> str:
    """The selected runs' configs compared, as MLflow's and W&B's run comparisons show them by default: a table of
    the keys whose values differ (one column per run, each run's value; "–" where a run has no such key), a line
    saying how many keys differ and how many are the same, and the keys that are the same, with their one value,
    in a closed <details> under it (opened, it shows every key)."""
    if not configs:
        return ""
    flats = {name: flatten({k: v for k, v in cfg.items() if k != "versions"}) for name, cfg in configs.items()}
    keys = list(dict.fromkeys(k for flat in flats.values() for k in flat))
    values = {key: [flat.get(key, "–") for flat in flats.values()] for key in keys}
    differ = [key for key in keys if len({repr(v) for v in values[key]}) > 1]
    same = [key for key in keys if key not in differ]
    corner = html.escape(text("runs.compare_key"))
    count = text("runs.compare_count", differ=len(differ), same=len(same))
    parts = [f"<p class='wb-compare-count'>{html.escape(count)}</p>"]
    if differ:
        head = "".join(f"<th>{html.escape(name)}</th>" for name in flats)
        parts.append(f"<table class='wb-compare wb-compare-differ'><tr><th>{corner}</th>{head}</tr>"
                     f"{''.join(_compare_row(key, values[key], 'wb-diff') for key in differ)}</table>")
    if same:
        rows = "".join(_compare_row(key, values[key][:1]) for key in same)
        summary = html.escape(text("runs.compare_show_same", same=len(same)))
        value = html.escape(text("runs.compare_value"))
        parts.append(f"<details class='wb-compare-same'><summary>{summary}</summary><table class='wb-compare'>"
                     f"<tr><th>{corner}</th><th>{value}</th></tr>{rows}</table></details>")
    return f"<div class='wb-scroll'>{''.join(parts)}</div>"  # many runs or long values scroll inside the box


def _compare_row(key: str, values: list[Any], css: str = "") -> str:
    cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in values)
    return f"<tr class='{css}'><td><code>{html.escape(key)}</code></td>{cells}</tr>"


CSS = """
.wb-progress { padding: 8px 0; }
.wb-bar { height: 14px; border-radius: 7px; background: var(--neutral-200, #e5e7eb); overflow: hidden; margin: 6px 0; }
.wb-fill { height: 100%; transition: width .4s; }
.wb-error { color: #dc2626; font-weight: 600; margin-top: 6px; }
.wb-compare { border-collapse: collapse; width: 100%; font-size: 13px; }
.wb-compare td, .wb-compare th { border: 1px solid var(--neutral-300, #d1d5db); padding: 2px 6px; }
.wb-compare tr.wb-diff td { background: #fef3c7; color: #111827; font-weight: 600; }
.wb-compare td { overflow-wrap: anywhere; }
.wb-scroll { overflow-x: auto; max-width: 100%; }
/* tables scroll inside their own box, never widen the page */
#wb-runs, #wb-data-preview, #wb-compare { max-width: 100%; overflow-x: auto; }
/* the Evaluate and Compare results tables scroll sideways in their own box (webui/forms/eval_table.py scrolling),
   their headings whole: a narrow column never breaks a heading one character a line (the Chinese page did) */
#wb-eval-table, #wb-compare-table { max-width: 100%; min-width: 0; }
.wb-table-scroll th { white-space: nowrap; }
/* the rendered example wraps between words (gradio breaks anywhere: "TRAIN/ED"), a long token where it must */
#wb-example .textfield { word-break: normal; overflow-wrap: anywhere; }
/* the chat panes' corner buttons (copy all, clear) sit over the first message: room above the messages for them */
#wb-chat-tuned .bubble-wrap, #wb-chat-base .bubble-wrap { padding-top: 36px; }
"""
