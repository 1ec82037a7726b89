"""The Train tab's placeholder fields: a text field for each `{{name}}` the dataset inspection found, whose
values are the config's data.replace (engine/data/placeholders.py fills them when training).

The form carries data.replace as one option widget (`mapping`, a hidden JSON: form_fields.REPLACE), so the
preview, Save, Load and Start read it like any other option. The fields edit it in the browser (no round trip,
so a Start clicked right after typing sees every letter); which placeholder each field edits is `names`,
set with the fields whenever an inspection answers or a config is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.forms.fields import REPLACE
from webui.i18n import message, t

MAX_FIELDS = 8  # text fields on the page; more placeholders than this are filled in a config's data.replace
# The mapping with field INDEX's placeholder set to the typed text (left out while the field is empty).
FILL_JS = """(names, mapping, value) => {
  const out = {...(mapping || {})};
  const name = (names || [])[INDEX];
  if (name === undefined) return out;
  if (value) { out[name] = value; } else { delete out[name]; }
  return out;
}"""


@dataclass
class PlaceholderPanel:
    box: gr.Column  # shown while the dataset holds placeholders (or data.replace fills some)
    note: gr.Markdown
    fields: list[gr.Textbox]  # field i fills names[i]
    names: gr.JSON  # the placeholder of each shown field, in order
    mapping: gr.JSON  # data.replace: {name: text} of the filled fields (the form's REPLACE option)

    @property
    def outputs(self) -> list[gr.components.Component]:
        """What placeholder_view updates."""
        return [self.box, self.note, *self.fields, self.names, self.mapping]


def build_placeholder_panel() -> PlaceholderPanel:
    with gr.Column(visible=False, elem_id="wb-placeholders") as box:
        note = gr.Markdown(elem_id="wb-placeholders-note")
        with gr.Row(equal_height=False):
            fields = [gr.Textbox("", label=f"placeholder {index + 1}", visible=False, min_width=240,
                                 elem_id=f"wb-placeholder-{index}") for index in range(MAX_FIELDS)]
    names = gr.JSON([], visible="hidden", elem_id="wb-placeholder-names")
    mapping = gr.JSON({}, label=t("field.data.replace"), visible="hidden",
                      elem_id="f-" + REPLACE.key.replace(".", "-"))
    return PlaceholderPanel(box=box, note=note, fields=fields, names=names, mapping=mapping)


def wire_placeholder_fields(panel: PlaceholderPanel, inspection: dict[str, Any]) -> None:
    """A change of field i (typed, pasted, or set with the names by placeholder_view) sets names[i] in the mapping,
    in the browser, then runs `inspection` (the Train tab's dataset inspection, whose preview, example and lengths
    show the rows filled). `change`, not `input`: gradio's textbox sends `input` on key presses only, not on a paste
    with the mouse. placeholder_view sets each field to the text it holds: no change, so nothing loops (the
    mapping's own change event would: the JSON widget reports one on every value the server sends)."""
    for index, field in enumerate(panel.fields):
        filled = field.change(None, [panel.names, panel.mapping, field], panel.mapping,
                              js=FILL_JS.replace("INDEX", str(index)))
        filled.then(**inspection, trigger_mode="always_last", show_progress="hidden")


def field_names(found: list[str], mapping: dict[str, str], complete: bool) -> list[str]:
    """The placeholders to show fields for: those found, in order; and, where the inspection saw only part of the
    data (part of the file, or the first of several datasets), those data.replace fills, since the rest may hold
    them."""
    names = list(dict.fromkeys(found))
    if not complete:
        names += [name for name in mapping if name not in names]
    return names


def placeholder_view(panel: PlaceholderPanel, report: dict[str, Any], mapping: dict[str, str] | None,
                     request: gr.Request | None, *, every_dataset: bool = True) -> dict[Any, Any]:
    """The fields for an inspect-data report: one per placeholder found, holding its data.replace text; the mapping
    keeps only the placeholders shown. `every_dataset`: the report covers every dataset of the run (the page
    inspects the first of several only)."""
    mapping = dict(mapping or {})
    found = {item["name"]: item for item in report.get("placeholders") or []}
    rows, measured = int(report.get("rows") or 0), int(report.get("sample_rows") or 0)
    names = field_names(list(found), mapping, complete=every_dataset and measured >= rows)
    shown = names[:MAX_FIELDS]
    updates: dict[Any, Any] = {panel.names: shown, panel.box: gr.update(visible=bool(names)),
                               panel.note: placeholder_note(names, measured, rows, request)}
    kept = {name: text for name, text in mapping.items() if name in names}
    if kept != mapping:  # sent only when it changes: the JSON widget reports a change on every value it receives,
        updates[panel.mapping] = kept  # and the config preview and the estimate, which it starts, would run again
    for index, field in enumerate(panel.fields):
        if index >= len(shown):
            updates[field] = gr.update(visible=False, value="")
            continue
        name = shown[index]
        count = found.get(name)
        info = (message(request, "msg.placeholder_count", count=count["count"], rows=count["rows"]) if count
                else message(request, "msg.placeholder_unseen"))
        updates[field] = gr.update(visible=True, label=f"{{{{{name}}}}}", info=info, value=mapping.get(name, ""))
    return updates


def placeholder_note(names: list[str], measured: int, rows: int, request: gr.Request | None) -> str:
    """What the fields are for; where the inspection read part of the file, and where fields ran out."""
    if not names:
        return ""
    note = message(request, "msg.placeholders")
    if measured < rows:
        note += " " + message(request, "msg.placeholders_sampled", sample=f"{measured:,}")
    if len(names) > MAX_FIELDS:
        note += " " + message(request, "msg.placeholders_more", n=len(names) - MAX_FIELDS)
    return note
