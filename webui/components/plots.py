"""The loss plots' colours: a series the chart was not built with draws nothing, so each plot gets its
colour map (render.loss_colors) in an update of its own, after its data.

Why: gradio 6's LinePlot builds its Vega chart (colour domain, axis types) once and afterwards only swaps
the data, so a series that appears later (a second run overlaid, the first eval point) gets no colour and
is invisible, with the legend still showing the old series. A change of `color_map` rebuilds the chart, but
the page applies an update's properties one at a time with `value` last, so a map sent together with the
data rebuilds the chart around the previous data. Sent as its own update once the data is there (a State's
change event), it rebuilds the chart around the new data, and only when the set of series changed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


def recolour(colors: dict[str, str]) -> Any:
    """The plot's new colour map (nothing to send while it shows no series)."""
    return gr.update(color_map=colors) if colors else gr.skip()


def colour_state(plot: gr.LinePlot) -> gr.State:
    """A State that handlers fill with render.loss_colors(...) beside the plot's data; the plot follows it."""
    colors = gr.State({})
    colors.change(recolour, colors, plot, show_progress="hidden")
    return colors
