"""The loss plots' colours: a series the chart was not built with draws nothing, so each plot gets its
colour map (render.loss_colors) in an update of its own, after its data.

Why: gradio 6's LinePlot builds its Vega chart (colour domain, axis types) once and afterwards only swaps
the data, so a series that appears later (a second run overlaid, the first eval point) gets no colour and
is invisible, with the legend still showing the old series. A change of `color_map` rebuilds the chart, but
the page applies an update's properties one at a time with `value` last, so a map sent together with the
data rebuilds the chart around the previous data. Sent as its own update once the data is there (a State's
change event), it rebuilds the chart around the new data, and only when the set of series changed.

A loss plot (the Train and Runs tabs') gets its y-axis title in the same update: "loss" while it draws only loss
curves, a neutral "value" once a preference run's rewards (or another job's curves) share it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.components.render import y_title_key
from webui.i18n import message, words


def recolour(colors: dict[str, str]) -> Any:
    """The plot's new colour map (nothing to send while it shows no series)."""
    return gr.update(color_map=colors) if colors else gr.skip()


def recolour_titled(colors: dict[str, str], request: gr.Request | None = None) -> Any:
    """recolour, with the y-axis title that fits the series (render.y_title_key) in the visitor's language."""
    if not colors:
        return gr.skip()
    return gr.update(color_map=colors, y_title=message(request, y_title_key(colors, words(request))))


def colour_state(plot: gr.LinePlot, titled: bool = False) -> gr.State:
    """A State that handlers fill with render.loss_colors(...) beside the plot's data; the plot follows it (and,
    `titled`, takes the y-axis title of its series)."""
    colors = gr.State({})
    colors.change(recolour_titled if titled else recolour, colors, plot, show_progress="hidden")
    return colors
