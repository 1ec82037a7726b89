"""Build the widget of a form field from its schema (kind, choices, bounds, help): numbers only ever
come from gr.Number or gr.Slider."""

from __future__ import annotations

import gradio as gr

from webui.forms import BITS_LABELS, STOP_BY, STOP_BY_CHOICES, FormField, bits_choices, bits_for
from webui.i18n import t


def field_widget(field: FormField, value: object | None = None, visible: bool = True, method: str = "lora",
                 min_width: int = 160) -> gr.components.Component:
    """`method` decides the quantization choices (qlora offers no 16-bit); `min_width` keeps labels readable."""
    value = field.default if value is None else value
    common = {"label": t(f"field.{field.key}"), "info": t(f"help.{field.key}"), "visible": visible,
              "elem_id": "f-" + field.key.replace(".", "-").replace("_", "-"), "min_width": min_width}
    kind = field.kind
    if kind == "slider":
        low, high, step = field.slider
        return gr.Slider(low, high, value=value, step=step, **common)
    if kind == "integer":
        return gr.Number(value=value, precision=0, minimum=field.minimum, step=1, **common)
    if kind == "number":
        return gr.Number(value=value, minimum=field.minimum, **common)
    if kind == "checkbox":
        return gr.Checkbox(value=bool(value), **common)
    if field.key == "method.bits":
        return gr.Radio(bits_radio_choices(method), value=bits_for(method, value), **common)
    if field.key == STOP_BY:  # the value stays "epochs"/"steps"; only the shown label is translated
        return gr.Radio([(t(f"choice.{c}"), c) for c in STOP_BY_CHOICES], value=value, **common)
    if kind == "radio":
        return gr.Radio(list(field.choices), value=value, **common)
    if kind == "dropdown":
        return gr.Dropdown(list(field.choices), value=value, **common)
    return gr.Textbox(value=", ".join(value) if isinstance(value, list) else (value or ""), **common)


def bits_radio_choices(method: str) -> list[tuple[str, int]]:
    return [(BITS_LABELS[bits], bits) for bits in bits_choices(method)]
