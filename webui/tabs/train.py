"""Train tab: base model, dataset, method, training settings, config preview, start/stop/cancel and
the live view (progress, loss curve, log). Layout and wiring only; handlers live in train_handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
import gradio as gr

from engine.config import DataConfig, MethodConfig, RunConfig, choices
from webui import forms
from webui.confirm import Confirm, build_confirm
from webui.context import AppContext
from webui.datasets import dataset_choices
from webui.i18n import t
from webui.models import model_choices
from webui.plots import colour_state
from webui.render import loss_frame
from webui.tabs import train_handlers as h
from webui.widgets import field_widget
from webui.wiring import bind


@dataclass
class TrainTab:
    model: gr.Dropdown
    model_info: gr.Markdown
    upload: gr.File
    dataset: gr.Dropdown
    data_format: gr.Dropdown
    data_summary: gr.HTML
    preview: gr.Dataframe
    example: gr.HighlightedText
    histogram: gr.BarPlot
    over_cutoff: gr.Markdown
    method: gr.Dropdown
    fields: dict[str, gr.components.Component]
    trainable: gr.Markdown
    yaml: gr.Code
    command: gr.Textbox
    config_name: gr.Textbox
    save: gr.Button
    saved: gr.Dropdown
    load: gr.Button
    run_name: gr.Textbox
    start: gr.Button
    stop: gr.Button
    cancel: gr.Button
    confirm_cancel: Confirm
    current: gr.State
    seen: gr.State
    progress: gr.HTML
    loss: gr.LinePlot
    loss_colors: gr.State  # the loss plot's colour map, sent after its data (webui.plots)
    log: gr.Textbox
    timer: gr.Timer

    def form_inputs(self) -> list[gr.components.Component]:
        """The inputs every handler that reads the form takes, in h.Form.parse order."""
        return [self.model, self.dataset, self.data_format, self.method, *self.fields.values()]


def build_model_panel(ctx: AppContext, starter: RunConfig | None) -> dict:
    with gr.Row():
        model_list = model_choices(ctx.workspace, ctx.assets)
        first = starter.model.name_or_path if starter else (model_list[0] if model_list else None)
        model = gr.Dropdown(model_list, value=first, allow_custom_value=True,
                            label=t("train.model"), info=t("train.model_help"), elem_id="wb-model", scale=2)
        model_info = gr.Markdown(elem_id="wb-model-info")
    return {"model": model, "model_info": model_info}


def build_data_panel(ctx: AppContext, starter: RunConfig | None) -> dict:
    with gr.Row():
        upload = gr.File(label=t("train.upload"), file_types=[".json", ".jsonl", ".csv", ".parquet", ".txt"],
                         elem_id="wb-upload", height=120)
        with gr.Column():
            dataset = gr.Dropdown(dataset_choices(ctx.uploads, ctx.assets), value=starter.data.path if starter else None,
                                  label=t("train.dataset"),
                                  elem_id="wb-dataset")
            data_format = gr.Dropdown(list(choices(DataConfig, "format")), value="auto", label=t("field.data.format"),
                                      info=t("help.data.format"), elem_id="wb-format")
    data_summary = gr.HTML(elem_id="wb-data-summary")
    preview = gr.Dataframe(label=t("train.preview"), interactive=False, visible=False, wrap=True, max_height=220)
    with gr.Row():
        example = gr.HighlightedText(label=t("train.example"), color_map={"trained": "green"}, visible=False,
                                     elem_id="wb-example", scale=3)
        # bin labels turned so that a dozen ranges like "1025–1152" stay readable side by side; bars start at 0
        histogram = gr.BarPlot(x="tokens", y="rows", color="fits", label=t("train.lengths"), visible=False,
                               sort=None, x_label_angle=-45, y_lim=[0, None], elem_id="wb-lengths", scale=2)
    over_cutoff = gr.Markdown(visible=False, elem_id="wb-over-cutoff")
    return {"upload": upload, "dataset": dataset, "data_format": data_format, "data_summary": data_summary,
            "preview": preview, "example": example, "histogram": histogram, "over_cutoff": over_cutoff}


def build_method_panel(start: dict[str, Any], starter: RunConfig | None) -> dict:
    name = starter.method.name if starter else "lora"
    method = gr.Dropdown(list(choices(MethodConfig, "name")), value=name, label=t("field.method.name"),
                         info=t("help.method.name"), elem_id="wb-method")
    shown = forms.visible_fields(name)
    fields = {}
    for row in forms.METHOD_ROWS:
        with gr.Row(equal_height=False):
            for key in row:
                fields[key] = field_widget(forms.BY_KEY[key], start[key], visible=shown[key], method=name,
                                           min_width=220)
    fields = {field.key: fields[field.key] for field in forms.METHOD_FIELDS}  # the order handlers expect
    trainable = gr.Markdown(elem_id="wb-trainable")
    return {"method": method, "fields": fields, "trainable": trainable}


def build_training_panel(start: dict[str, Any]) -> dict[str, gr.components.Component]:
    fields = {}
    hidden = "train.epochs" if start[forms.STOP_BY] == "steps" else "train.max_steps"
    with gr.Row(equal_height=False):  # min_width: a row wraps rather than squeeze a slider and its label
        for field in forms.TRAIN_FIELDS:
            fields[field.key] = field_widget(field, start[field.key], visible=field.key != hidden, min_width=240)
    with gr.Accordion(t("train.advanced"), open=False), gr.Row(equal_height=False):
        for field in forms.ADVANCED_FIELDS:
            fields[field.key] = field_widget(field, start[field.key], min_width=240)
    return fields


def build_config_panel(ctx: AppContext) -> dict:
    with gr.Accordion(t("train.config"), open=False):
        with gr.Row():
            yaml_view = gr.Code(language="yaml", label=t("train.yaml"), lines=14, elem_id="wb-yaml", scale=3)
            with gr.Column(scale=2):
                command = gr.Textbox(label=t("train.command"), info=t("train.command_help"), interactive=False,
                                     elem_id="wb-command")
                config_name = gr.Textbox(label=t("train.config_name"), value="my-run", elem_id="wb-config-name")
                save = gr.Button(t("train.save_config"))
                saved = gr.Dropdown(h.config_choices(ctx), label=t("train.saved_configs"))
                load = gr.Button(t("train.load_config"))
    return {"yaml": yaml_view, "command": command, "config_name": config_name, "save": save, "saved": saved,
            "load": load}


def build_monitor_panel() -> dict:
    with gr.Row():
        run_name = gr.Textbox(label=t("train.run_name"), placeholder=t("train.run_name_help"), scale=2)
        start = gr.Button(t("train.start"), variant="primary", elem_id="wb-start")
        stop = gr.Button(t("train.stop"), elem_id="wb-stop")
        cancel = gr.Button(t("train.cancel"), variant="stop", elem_id="wb-cancel")
    confirm_cancel = build_confirm("wb-cancel-confirm", "train.cancel_yes", "train.cancel_no")
    progress = gr.HTML("", elem_id="wb-progress")
    with gr.Row():
        loss = gr.LinePlot(loss_frame({}), x="step", y="loss", color="series", label=t("train.loss"),
                           elem_id="wb-loss", scale=3)
        log = gr.Textbox(label=t("train.log"), lines=14, max_lines=14, autoscroll=True, elem_id="wb-log",
                         scale=2)
    loss_colors = colour_state(loss)
    return {"run_name": run_name, "start": start, "stop": stop, "cancel": cancel, "confirm_cancel": confirm_cancel,
            "progress": progress, "loss": loss, "loss_colors": loss_colors, "log": log, "current": gr.State(None),
            "seen": gr.State(-1), "timer": gr.Timer(1.0)}


def build_train_tab(ctx: AppContext, app: gr.Blocks) -> TrainTab:
    with gr.Tab(t("tab.train"), id="train"):
        gr.Markdown(t("train.intro"))
        starter = forms.starter_config(ctx.assets)  # the demo model and identity set, where bundled
        start = forms.from_config(starter) if starter else forms.defaults()
        parts = build_model_panel(ctx, starter)
        with gr.Accordion(t("train.data"), open=True):
            parts |= build_data_panel(ctx, starter)
        with gr.Accordion(t("train.method"), open=True):
            parts |= build_method_panel(start, starter)
        with gr.Accordion(t("train.training"), open=True):
            parts["fields"] |= build_training_panel(start)
        parts |= build_config_panel(ctx)
        parts |= build_monitor_panel()
    tab = TrainTab(**parts)
    wire_train_tab(ctx, tab, app)
    return tab


def wire_train_tab(ctx: AppContext, tab: TrainTab, app: gr.Blocks) -> None:
    form = tab.form_inputs()
    # A new model clears the previous one's info and count in the browser at once (no round trip), before the
    # server's answers for the new model arrive.
    tab.model.change(None, None, [tab.model_info, tab.trainable], js="() => ['', '']")
    gr.on([app.load, tab.model.change], bind(h.show_model, ctx), tab.model, tab.model_info)
    app.load(h.plot_titles, None, tab.loss)
    tab.upload.upload(bind(h.upload_dataset, ctx), tab.upload, tab.dataset)
    app.load(bind(h.list_datasets, ctx), None, tab.dataset)  # uploads of earlier visits and other visitors
    inspect_inputs = [tab.model, tab.dataset, tab.data_format, tab.fields["train.cutoff_len"],
                      tab.fields["data.overlength"]]
    # app.load too: the page opens with the starter dataset chosen, whose summary must show without a change
    gr.on([app.load, tab.dataset.change, tab.data_format.change, tab.fields["train.cutoff_len"].release,
           tab.fields["data.overlength"].change], bind(h.inspect, ctx), inspect_inputs,
          [tab.data_summary, tab.preview, tab.example, tab.histogram, tab.over_cutoff], trigger_mode="always_last")
    tab.fields[forms.STOP_BY].change(lambda by: (gr.update(visible=by == "epochs"), gr.update(visible=by == "steps")),
                                     tab.fields[forms.STOP_BY], [tab.fields["train.epochs"], tab.fields["train.max_steps"]])
    # A new method's count and preview run after its options are shown: the bits radio's choices change with the
    # method, and gradio refuses a value that is not among them.
    method_shown = tab.method.change(h.method_visibility, [tab.method, tab.fields["method.bits"]],
                                     [tab.fields[f.key] for f in forms.METHOD_FIELDS])
    plan_triggers = [app.load, tab.model.change, tab.dataset.change] + [
        tab.fields[k].change for k in forms.COUNT_FIELDS]
    # Every change starts its own count at once (most are counted from config.json in microseconds); an answer
    # that comes back after a newer request of the same visitor is dropped (h.count_trainable).
    count = {"fn": bind(h.count_trainable, ctx), "inputs": form, "outputs": tab.trainable,
             "concurrency_limit": None, "show_progress": "hidden"}
    gr.on(plan_triggers, trigger_mode="multiple", **count)
    method_shown.then(**count)
    preview = {"fn": bind(h.preview, ctx), "inputs": [tab.config_name, *form], "outputs": [tab.yaml, tab.command],
               "show_progress": "hidden"}
    gr.on([app.load] + [c.change for c in form if c is not tab.method] + [tab.config_name.change],
          trigger_mode="always_last", **preview)
    method_shown.then(**preview)
    tab.save.click(bind(h.save_config_clicked, ctx), [tab.config_name, *form], tab.saved)
    tab.load.click(bind(h.load_saved_config, ctx), tab.saved, form)
    tab.start.click(bind(h.start, ctx), [tab.run_name, *form], [tab.current, tab.run_name]).then(
        lambda: -1, None, tab.seen)
    tab.stop.click(bind(h.stop, ctx), tab.current, None)
    tab.cancel.click(bind(h.ask_cancel, ctx), tab.current, tab.confirm_cancel.outputs)
    tab.confirm_cancel.yes.click(bind(h.cancel, ctx), tab.confirm_cancel.pending,
                                 [*tab.confirm_cancel.outputs, tab.current, tab.progress, tab.loss, tab.log,
                                  tab.loss_colors])
    tab.timer.tick(bind(h.poll, ctx), [tab.current, tab.seen],
                   [tab.current, tab.progress, tab.loss, tab.log, tab.seen, tab.loss_colors], show_progress="hidden")
