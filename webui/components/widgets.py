"""Build the widget of a form option from its definition (webui.forms.fields): a FormField's kind, choices,
bounds and help come from the schema, so numbers only ever come from gr.Number or gr.Slider; the stop-by and
bits radios have builders of their own."""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.forms.fields import BITS, BITS_LABELS, STOP_BY, FormField, Option
from webui.forms.mapping import bits_choices, bits_for
from webui.i18n import message, t


def labelled(option: Option, visible: bool, min_width: int) -> dict[str, Any]:
    """Label, help, visibility, elem_id and width of an option's widget (`f-train-cutoff-len` for train.cutoff_len)."""
    return {"label": t(f"field.{option.key}"), "info": t(f"help.{option.key}"), "visible": visible,
            "elem_id": "f-" + option.key.replace(".", "-").replace("_", "-"), "min_width": min_width}


def field_widget(field: FormField, value: object | None = None, visible: bool = True,
                 min_width: int = 160, elem_id: str | None = None) -> gr.components.Component:
    """The widget of a schema field; `min_width` keeps its label readable; `elem_id` replaces the derived one
    (the Chat tab keeps the ids its pages and tests know)."""
    value = field.default if value is None else value
    common = {**labelled(field, visible, min_width), **({"elem_id": elem_id} if elem_id else {})}
    kind = field.kind
    if kind == "slider":
        low, high, step = field.slider
        return gr.Slider(low, high, value=value, step=step, **common)  # clamps a typed number: clamp_typed_numbers
    if kind == "integer":
        return gr.Number(value=value, precision=0, minimum=field.minimum, step=1, **common)
    if kind == "number":
        return gr.Number(value=value, minimum=field.minimum, **common)
    if kind == "checkbox":
        return gr.Checkbox(value=bool(value), **common)
    if kind == "dropdown":
        return gr.Dropdown(list(field.choices), value=value, **common)
    if kind == "multiselect":
        return gr.Dropdown(list(field.choices), value=list(value), multiselect=True, **common)
    return gr.Textbox(value=", ".join(value) if isinstance(value, list) else (value or ""), **common)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def clamp_typed_numbers() -> None:
    """Every slider of the page takes a typed number outside its range instead of gradio's "Value 1 is less than
    minimum value 8." raised once per event that reads it (unnamed, twice on the Train tab, while the summary,
    histogram and YAML kept the old value). A slider of another tab brings it into its range, as the browser's box
    shows on blur. A Train form field (elem_id `f-...`) passes it on as typed: the config's validation refuses
    what the schema refuses in the command line's own sentence ("'train.cutoff_len' is 4: input should be greater
    than or equal to 8."), in the config preview while the number is typed and from Start or Save through the
    page's API, where a number was once raised to the minimum without a word. In the browser the box itself raises
    it on blur, and `clamp_note`, wired to the slider's release (which carries the number as typed), says so.

    Set on the class, once, for the web process: gradio re-creates a component from its constructor arguments for a
    session whenever an event updates one of its properties (gr.update, gr.skip), so a replaced preprocess on one
    instance is lost after the first such update; and a subclass of gr.Slider would make gradio write a .pyi
    beside this file."""
    if getattr(gr.Slider.preprocess, "clamps", False):
        return
    preprocess = gr.Slider.preprocess

    def clamping(self: gr.Slider, payload: float) -> float:
        if is_number(payload):
            if str(self.elem_id or "").startswith("f-"):
                return gr.Number.round_to_precision(payload, self.precision)
            payload = min(max(payload, self.minimum), self.maximum)
        return preprocess(self, payload)

    clamping.clamps = True  # type: ignore[attr-defined]
    gr.Slider.preprocess = clamping  # type: ignore[method-assign]


clamp_typed_numbers()


def refuse_wrong_types() -> None:
    """A value that is not a number sent for a number box or slider (through the API: `"epochs": "ten"`, a list)
    gets a sentence instead of gradio's "Error" (its bounds check compares it with the minimum and raises a
    TypeError, whose text gradio hides). A field of the Train form (elem_id `f-...`) passes it on unchanged, so
    the config's validation names its key ("'train.epochs' is 'ten': input should be a valid number."); any other
    box refuses it naming its label. Set on the classes, once, as clamp_typed_numbers is (and for its reasons)."""
    for cls in (gr.Number, gr.Slider):
        if getattr(cls.preprocess, "refuses_wrong_types", False):
            continue
        cls.preprocess = _refusing(cls.preprocess)  # type: ignore[method-assign]


# Number boxes whose handler validates the number through the config it makes, so that a number outside the box's
# range is refused by Start naming its key and range in the command line's sentence ("'train.cutoff_len' is 4: input
# should be greater than or equal to 8."), not by gradio's unnamed "Value 4 is less than minimum value 8." (the
# Export tab's shard size: export() names the field and max_shard_size)
CHECKED_BY_CONFIG = ("wb-compare-", "wb-eval-", "wb-export-")


def _refusing(preprocess: Any) -> Any:
    def refusing(self: gr.Number | gr.Slider, payload: Any) -> Any:
        if is_number(payload) and isinstance(self, gr.Number) and str(self.elem_id or "").startswith(
                CHECKED_BY_CONFIG):
            return gr.Number.round_to_precision(payload, self.precision)  # as typed: the config's checks name it
        if payload is None or is_number(payload):
            return preprocess(self, payload)
        if str(self.elem_id or "").startswith("f-"):
            return payload  # webui.forms.mapping.to_config validates it and names the key
        key = getattr(self.label, "key", None)
        label = message(None, key) if key else str(self.label or "This box")
        raise gr.Error(message(None, "msg.not_a_number", field=label, value=repr(payload)[:80]))

    refusing.refuses_wrong_types = True  # type: ignore[attr-defined]
    refusing.clamps = getattr(preprocess, "clamps", False)  # type: ignore[attr-defined]
    return refusing


refuse_wrong_types()


BITS_ID = labelled(BITS, True, 0)["elem_id"]  # f-method-bits


def take_every_bits_value() -> None:
    """The bits radio's choices follow the method (qlora: 4 or 8 bits, no 16-bit), and they change in a visit's
    session on the server when the method's event answers. An event the browser sent before that, still carrying
    16-bit (a config preview started by a dataset change just before qlora was picked), was refused by gradio
    before its handler ran: "Value: 0 is not in the list of choices: [4, 8]" in a toast. The bits radio takes any
    value it offers for some method; the form reads it as the chosen method does (webui.forms.mapping.bits_for:
    qlora's 4-bit), which is what the radio shows. Set on the class, once, as clamp_typed_numbers is (and for its
    reasons)."""
    if getattr(gr.Radio.preprocess, "takes_every_bits_value", False):
        return
    preprocess = gr.Radio.preprocess

    def taking(self: gr.Radio, payload: Any) -> Any:
        if self.elem_id == BITS_ID and payload in BITS.choices:
            return payload
        return preprocess(self, payload)

    taking.takes_every_bits_value = True  # type: ignore[attr-defined]
    gr.Radio.preprocess = taking  # type: ignore[method-assign]


take_every_bits_value()


def clamp_note(slider: gr.Slider, event: gr.EventData, request: gr.Request) -> None:
    """A slider released with a number outside its range (typed, then Enter or Tab): one warning naming the field
    and the value every view now shows."""
    typed = getattr(event, "_data", None)
    if not isinstance(typed, int | float) or slider.minimum <= typed <= slider.maximum:
        return
    shown = min(max(typed, slider.minimum), slider.maximum)
    key = getattr(slider.label, "key", None)  # an I18nData from webui.i18n.t
    label = message(request, key) if key else str(slider.label)
    gr.Warning(message(request, "msg.slider_clamped", field=label, typed=f"{typed:g}", low=f"{slider.minimum:g}",
                       high=f"{slider.maximum:g}", value=f"{shown:g}"))


def stop_by_radio(value: str, min_width: int = 160) -> gr.Radio:
    """Train for a number of epochs or of steps: the value stays "epochs"/"steps"; only the label is translated."""
    return gr.Radio([(t(f"choice.{c}"), c) for c in STOP_BY.choices], value=value,
                    **labelled(STOP_BY, True, min_width))


def bits_radio(method: str, value: int, visible: bool = True, min_width: int = 160) -> gr.Radio:
    """The quantization bits `method` can run with (qlora offers no 16-bit), showing what the run will load."""
    return gr.Radio(bits_radio_choices(method), value=bits_for(method, value), **labelled(BITS, visible, min_width))


def bits_radio_choices(method: str) -> list[tuple[str, int]]:
    return [(BITS_LABELS[bits], bits) for bits in bits_choices(method)]


def listing(choices: list[Any], chosen: Any) -> Any:
    """A dropdown's update to `choices` (values, or (label, value) pairs) that keeps `chosen` where it is listed (for
    a multiselect, each of its values that is) and drops it where it is not: gradio refuses a value outside the
    choices with a raw "is not in the list of choices" error on the next event that reads the dropdown."""
    values = [choice[1] if isinstance(choice, tuple) else choice for choice in choices]
    if isinstance(chosen, list):
        return gr.update(choices=choices, value=[value for value in chosen if value in values])
    return gr.update(choices=choices, value=chosen if chosen in values else None)
