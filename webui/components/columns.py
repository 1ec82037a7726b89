"""The Columns group (the Train tab's, and the Evaluate and Compare tabs' own: webui/tabs/file_columns.py): a
dropdown per standard name the chosen stage reads (SFT's prompt, response,
instruction, output ...; a preference stage's prompt, chosen, rejected, label ...), each offering "(auto)" and the
inspected file's own columns. It shows under the dataset once the inspection knows the file's columns, and opens by
itself when the inspection refuses the file for its columns (no format matches, a mapped column is missing).

What is picked is the form's COLUMNS option (`maps`, a hidden JSON: webui.forms.columns), edited in the browser
(no round trip) for the first dataset, the one the page inspects; then the inspection runs again with it, so the
summary, preview, example and Start's check read the file mapped. The dropdowns are set with the map whenever an
inspection answers or a config is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.datapaths import display_name
from webui.forms.columns import AUTO, NAMES, column_choices, refused_columns, shown_names
from webui.forms.fields import COLUMNS
from webui.forms.prestart import StartRefusedError
from webui.i18n import message, sentence, t

# The maps with the first dataset's NAME set to the picked column (left out for "(auto)").
PICK_JS = """(dataset, maps, value) => {
  const out = {...(maps || {})};
  if (!dataset) return out;
  const own = {...(out[dataset] || {})};
  if (value) { own[NAME] = value; } else { delete own[NAME]; }
  if (Object.keys(own).length) { out[dataset] = own; } else { delete out[dataset]; }
  return out;
}"""
MAPS_ID = "f-" + COLUMNS.key.replace(".", "-")  # the Train form's COLUMNS option
# The engine's refusals the page words its own way: its sentence for a file matching no format says "map them with
# data.columns" (the CLI's words); the page's points at the Columns group.
ON_PAGE = {"engine.data.no_format": "msg.no_format_columns"}


@dataclass
class ColumnsPanel:
    box: gr.Accordion  # shown once the inspection knows the file's columns; opened by a refusal it answers
    note: gr.Markdown  # which file the dropdowns map
    fields: dict[str, gr.Dropdown]  # standard name -> its dropdown ("" = auto)
    maps: gr.JSON  # {dataset: {standard: column}} of the chosen datasets (the form's COLUMNS option)

    @property
    def outputs(self) -> list[gr.components.Component]:
        """What columns_view updates (not `maps`: its change would run the form's handlers again)."""
        return [self.box, self.note, *self.fields.values()]


def build_columns_panel(stage: str, prefix: str = "wb", maps_id: str = MAPS_ID) -> ColumnsPanel:
    """The group, hidden; `prefix` and `maps_id` name its elements (the Evaluate tab has one of its own)."""
    shown = shown_names(stage)
    with gr.Accordion(t("train.columns"), open=False, visible=False, elem_id=f"{prefix}-columns") as box:
        note = gr.Markdown(elem_id=f"{prefix}-columns-note")
        with gr.Row(equal_height=False):
            fields = {name: gr.Dropdown([(t("train.column_auto"), AUTO)], value=AUTO, label=name,
                                        visible=shown[name], min_width=160, elem_id=f"{prefix}-column-{name}")
                      for name in NAMES}
    maps = gr.JSON({}, label=t("field.data.columns"), visible="hidden", elem_id=maps_id)
    return ColumnsPanel(box=box, note=note, fields=fields, maps=maps)


def wire_column_fields(panel: ColumnsPanel, dataset: gr.Dropdown, inspection: dict[str, Any]) -> None:
    """A pick in dropdown NAME sets NAME in the first dataset's map, in the browser, then runs `inspection` (the
    Train tab's dataset inspection, which reads the file mapped). `input`, not `change`: columns_view sets the
    dropdowns, and a change it made must not inspect again."""
    for name, field in panel.fields.items():
        picked = field.input(None, [dataset, panel.maps, field], panel.maps, js=PICK_JS.replace("NAME", repr(name)))
        picked.then(**inspection, trigger_mode="always_last", show_progress="hidden")


def columns_view(panel: ColumnsPanel, dataset: str, own: dict[str, str], stage: str, columns: list[str],
                 request: gr.Request | None, *, refused: bool = False) -> dict[Any, Any]:
    """The group for the file `dataset` with `columns`: each dropdown offers them and holds `own` map's pick; opened
    where the inspection refused the file for its columns."""
    auto, shown = message(request, "train.column_auto"), shown_names(stage)
    updates: dict[Any, Any] = {panel.box: gr.update(visible=True, open=True) if refused else gr.update(visible=True),
                               panel.note: message(request, "msg.columns_of", name=display_name(dataset))}
    for name, field in panel.fields.items():
        chosen = own.get(name, AUTO) if isinstance(own, dict) else AUTO
        updates[field] = gr.update(choices=column_choices(columns, chosen, auto), value=chosen, visible=shown[name])
    return updates


def columns_hidden(panel: ColumnsPanel) -> dict[Any, Any]:
    """No file whose columns are known (none chosen, a hub dataset, a folder, a file that cannot be read)."""
    return {panel.box: gr.update(visible=False)}


def refusal_view(panel: ColumnsPanel, dataset: str, own: dict[str, str], stage: str, error: Any,
                 request: gr.Request | None) -> tuple[str, dict[Any, Any]]:
    """An inspection's refusal as the page says it (a file matching no format: pick its columns under Columns), and
    the group: opened with the file's columns where the refusal is one it answers, else hidden."""
    said = getattr(error, "sentence", error)
    text = page_reason(said, request) if getattr(said, "key", None) in ON_PAGE else sentence(request, error)
    columns = refused_columns(said, own)
    if columns is None:
        return text, columns_hidden(panel)
    return text, columns_view(panel, dataset, own, stage, columns, request, refused=True)


def page_reason(reason: Any, request: gr.Request | None) -> Any:
    """A Start refusal's reason as the Train tab says it (ON_PAGE), else as it is."""
    key = ON_PAGE.get(getattr(reason, "key", None) or "")
    return message(request, key, **reason.values) if key else reason


def refused_sentence(refused: StartRefusedError, request: gr.Request | None) -> str:
    """A Start refusal in the visitor's language, its reason as a page with a Columns group words it (page_reason):
    the Train, Evaluate and Compare tabs'."""
    values = dict(refused.values)
    if "reason" in values:
        values["reason"] = page_reason(values["reason"], request)
    return message(request, refused.key, **values)
