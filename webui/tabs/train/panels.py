"""The Train tab's panels: one dataclass of components per panel and the builder that lays it out.

Handlers get the panel whose components they update and return `{component: value}` dicts, so no handler
depends on the order of its outputs. Layout only: wiring is in webui.tabs.train.tab.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from engine.config import DATA_EXTENSIONS, DataConfig, MethodConfig, RunConfig, choices
from engine.config_stage import STAGE_TITLES, STAGES, StageOptions, stage_problems
from webui.components.columns import ColumnsPanel, build_columns_panel
from webui.components.confirm import Confirm, build_confirm
from webui.components.plots import colour_state
from webui.components.render import loss_frame
from webui.components.widgets import bits_radio, field_widget, labelled, stop_by_radio
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms.datasets import dataset_choices
from webui.forms.fields import (
    ADAPTER,
    ADVANCED_FIELDS,
    BETA,
    BITS,
    COLUMNS,
    DESIRABLE_WEIGHT,
    DEVICES,
    EPOCHS,
    FSDP_OFFLOAD,
    LABEL_SMOOTHING,
    LOSS_TYPE,
    MASTER_ADDR,
    MASTER_PORT,
    MAX_PROMPT_LENGTH,
    MAX_STEPS,
    METHOD_ROWS,
    NNODES,
    NODE_RANK,
    NPROC_PER_NODE,
    OPTIONS,
    REPLACE,
    RPO_ALPHA,
    SIMPO_GAMMA,
    STAGE,
    STOP_BY,
    STRATEGY,
    TRAIN_FIELDS,
    UNDESIRABLE_WEIGHT,
    ZERO_OFFLOAD,
    ZERO_STAGE,
    FormField,
    Option,
)
from webui.forms.models import model_choices
from webui.i18n import t
from webui.jobs.devices import GpuList
from webui.tabs.train.placeholders import PlaceholderPanel, build_placeholder_panel

Component = gr.components.Component
FOLLOW_S = 1.0  # the live view's refresh while a run is followed
WATCH_S = 5.0  # how often a page that follows nothing looks for a run that started elsewhere


@dataclass
class ModelPanel:
    name: gr.Dropdown
    info: gr.Markdown


@dataclass
class DataPanel:
    upload: gr.File
    dataset: gr.Dropdown
    more: gr.Dropdown  # more datasets trained on with it (multiselect; usually none)
    remove: gr.Button  # removes the chosen dataset where it is an upload
    data_format: gr.Dropdown
    summary: gr.HTML
    preview: gr.Dataframe
    example: gr.HighlightedText  # a preference file's: the first pair's chosen side
    rejected: gr.HighlightedText  # a preference file's first pair's rejected side, beside the chosen one
    histogram: gr.BarPlot
    over_cutoff: gr.Markdown
    placeholders: PlaceholderPanel  # a text field for each {{name}} in the data: data.replace
    columns: ColumnsPanel  # which of the file's columns is each standard name: data.columns


@dataclass
class MethodPanel:
    name: gr.Dropdown
    bits: gr.Radio  # quantization: its choices follow the method (qlora: 4 or 8 bits)
    options: dict[FormField, Component]  # every method option's widget, shown or not
    trainable: gr.Markdown
    stage: dict[FormField, Component]  # train.stage, model.adapter (the starting run) and every stage option
    stage_note: gr.Markdown  # where the chosen method cannot train the chosen stage: the engine's sentence
    estimate: gr.Markdown  # memory and time before Start, with a verdict (webui/tabs/train/estimate.py)


@dataclass
class TrainingPanel:
    stop_by: gr.Radio  # epochs or steps: shows the epochs or the max-steps field
    options: dict[FormField, Component]  # the training settings, the advanced ones included


@dataclass
class DevicesPanel:
    gpus: gr.Markdown  # the GPUs nvidia-smi lists with the run using each, or "CPU only" (webui.tabs.train.devices)
    refresh: gr.Button
    options: dict[FormField, Component]  # devices and distributed.*
    commands: gr.Textbox  # the command of each node (the engine's --print-command) where several processes train
    panel: gr.Accordion


@dataclass
class ConfigPanel:
    yaml: gr.Code
    command: gr.Textbox
    config_name: gr.Textbox
    save: gr.Button
    saved: gr.Dropdown
    load: gr.Button
    panel: gr.Accordion
    remembered: gr.BrowserState  # the form's config as the visitor left it (webui.tabs.train.remember)


@dataclass
class MonitorPanel:
    run_name: gr.Textbox
    start: gr.Button
    stop: gr.Button
    cancel: gr.Button
    confirm_cancel: Confirm
    progress: gr.HTML
    loss: gr.LinePlot
    loss_colors: gr.State  # the loss plot's colour map, sent after its data (webui.components.plots)
    log: gr.Textbox
    current: gr.State  # the followed run's name
    seen: gr.State  # the version of its snapshot the page shows
    timer: gr.Timer  # FOLLOW_S ticks, active only until the followed run has finished (webui.tabs.train.follow)
    watch: gr.Timer  # WATCH_S ticks, active only while nothing is followed
    also: gr.Markdown  # the other runs training beside the followed one (a `launch.py train` from a terminal)
    start_run: gr.Dropdown | None = None  # Start from run (model.adapter): listed again as the followed run ends


@dataclass
class TrainTab:
    model: ModelPanel
    data: DataPanel
    method: MethodPanel
    training: TrainingPanel
    devices: DevicesPanel
    config: ConfigPanel
    monitor: MonitorPanel

    @property
    def widgets(self) -> dict[Option, Component]:
        """Every option's widget, keyed by the option (webui.forms.fields)."""
        return {STOP_BY: self.training.stop_by, BITS: self.method.bits, **self.method.options,
                **self.training.options, REPLACE: self.data.placeholders.mapping, COLUMNS: self.data.columns.maps,
                **self.method.stage,
                **self.devices.options}

    def form_inputs(self) -> list[Component]:
        """The inputs every handler that reads the form takes: model, dataset, more datasets, format, method, then
        the option widgets in OPTIONS order (train_handlers.Form.parse)."""
        widgets = self.widgets
        return [self.model.name, self.data.dataset, self.data.more, self.data.data_format, self.method.name,
                *(widgets[option] for option in OPTIONS)]


def build_model_panel(ctx: AppContext, starter: RunConfig | None) -> ModelPanel:
    with gr.Row():
        model_list = model_choices(ctx.workspace, ctx.assets)
        first = starter.model.name_or_path if starter else (model_list[0] if model_list else None)
        name = gr.Dropdown(model_list, value=first, allow_custom_value=True,
                           label=t("train.model"), info=t("train.model_help"), elem_id="wb-model", scale=2)
        info = gr.Markdown(elem_id="wb-model-info")
    return ModelPanel(name=name, info=info)


def build_data_panel(ctx: AppContext, starter: RunConfig | None) -> DataPanel:
    with gr.Row():
        upload = gr.File(label=t("train.upload"), file_types=list(DATA_EXTENSIONS),
                         elem_id="wb-upload", height=120)
        with gr.Column():
            listed = dataset_choices(ctx.uploads, ctx.assets)
            paths = [source.path for source in starter.data.sources()] if starter else [None]
            dataset = gr.Dropdown(listed, value=paths[0], label=t("train.dataset"), elem_id="wb-dataset")
            remove = gr.Button(t("train.remove_upload"), size="sm", elem_id="wb-remove-upload")  # the chosen upload
            more = gr.Dropdown(listed, value=paths[1:], multiselect=True, label=t("train.more_datasets"),
                               info=t("train.more_datasets_help"), elem_id="wb-more-datasets")
            data_format = gr.Dropdown(list(choices(DataConfig, "format")), value="auto", label=t("field.data.format"),
                                      info=t("help.data.format"), elem_id="wb-format")
    summary = gr.HTML(elem_id="wb-data-summary")
    columns = build_columns_panel(starter.train.stage if starter else "sft")
    placeholders = build_placeholder_panel()
    preview = gr.Dataframe(label=t("train.preview"), interactive=False, visible=False, wrap=True, max_height=220,
                           elem_id="wb-data-preview")
    with gr.Row():
        # the categories in one legend, not a badge after every trained piece (repeated, and broken across lines)
        example = gr.HighlightedText(label=t("train.example"), color_map={"trained": "green"}, visible=False,
                                     show_legend=True, elem_id="wb-example", scale=3)
        rejected = gr.HighlightedText(label=t("train.rejected"), color_map={"trained": "green"}, visible=False,
                                      show_legend=True, elem_id="wb-example-rejected", scale=3)
        # bin labels turned so that a dozen ranges like "1025–1152" stay readable side by side; bars start at 0
        histogram = gr.BarPlot(x="tokens", y="rows", color="fits", label=t("train.lengths"), visible=False,
                               sort=None, x_label_angle=-45, y_lim=[0, None], elem_id="wb-lengths", scale=2)
    over_cutoff = gr.Markdown(visible=False, elem_id="wb-over-cutoff")
    return DataPanel(upload=upload, dataset=dataset, more=more, remove=remove, data_format=data_format, summary=summary,
                     preview=preview, example=example, rejected=rejected, histogram=histogram, over_cutoff=over_cutoff,
                     placeholders=placeholders, columns=columns)


STAGE_ROWS = ((BETA, LOSS_TYPE, LABEL_SMOOTHING, RPO_ALPHA),
              (SIMPO_GAMMA, DESIRABLE_WEIGHT, UNDESIRABLE_WEIGHT, MAX_PROMPT_LENGTH))


def build_stage_widgets(start: forms.Values, runs: list[tuple[str, str]]) -> dict[FormField, Component]:
    """The stage, the starting run (a finished run of this base, or none) and the chosen stage's options."""
    widgets: dict[FormField, Component] = {}
    with gr.Row(equal_height=False):
        widgets[STAGE] = gr.Dropdown([(f"{stage} ({STAGE_TITLES[stage]})", stage) for stage in STAGES],
                                     value=start[STAGE], **labelled(STAGE, True, 220))
        chosen = start[ADAPTER] or ""
        listed = [(t("train.no_start_run"), ""), *runs]
        if chosen and chosen not in {value for _, value in listed}:
            listed.append((chosen, chosen))
        widgets[ADAPTER] = gr.Dropdown(listed, value=chosen, allow_custom_value=True,
                                       **labelled(ADAPTER, True, 220))
    shown = forms.visible_stage_fields(start[STAGE])
    for row in STAGE_ROWS:
        with gr.Row(equal_height=False):
            for field in row:
                widgets[field] = field_widget(field, start[field], visible=shown[field], min_width=220)
    return widgets


def build_method_panel(start: forms.Values, starter: RunConfig | None,
                       runs: list[tuple[str, str]] = ()) -> MethodPanel:
    method = starter.method.name if starter else "lora"
    name = gr.Dropdown(list(choices(MethodConfig, "name")), value=method, label=t("field.method.name"),
                       info=t("help.method.name"), elem_id="wb-method")
    shown = forms.visible_fields(method)
    options: dict[FormField, Component] = {}
    bits = None
    for row in METHOD_ROWS:
        with gr.Row(equal_height=False):
            for option in row:
                if option is BITS:
                    bits = bits_radio(method, start[BITS], visible=shown[BITS], min_width=220)
                else:
                    options[option] = field_widget(option, start[option], visible=shown[option], min_width=220)
    trainable = gr.Markdown(elem_id="wb-trainable")
    stage = build_stage_widgets(start, list(runs))
    stage_note = gr.Markdown(stage_note_text(start[STAGE], method), elem_id="wb-stage-note")
    estimate = gr.Markdown(elem_id="wb-estimate")
    return MethodPanel(name=name, bits=bits, options=options, trainable=trainable, stage=stage,
                       stage_note=stage_note, estimate=estimate)


def stage_note_text(stage: str, method: str) -> str:
    """Why `method` cannot train `stage` (the engine's sentences), or "" where it can."""
    issues = stage_problems(StageOptions(stage=stage), method, [])
    return "\n".join(f"<span class='wb-error'>{issue}</span>" for issue in issues)


def build_training_panel(start: forms.Values) -> TrainingPanel:
    options: dict[FormField, Component] = {}
    hidden = EPOCHS if start[STOP_BY] == "steps" else MAX_STEPS
    with gr.Row(equal_height=False):  # min_width: a row wraps rather than squeeze a slider and its label
        stop_by = stop_by_radio(start[STOP_BY], min_width=240)
        for field in TRAIN_FIELDS:
            options[field] = field_widget(field, start[field], visible=field != hidden, min_width=240)
    with gr.Accordion(t("train.advanced"), open=False), gr.Row(equal_height=False):
        for field in ADVANCED_FIELDS:
            options[field] = field_widget(field, start[field], min_width=240)
    return TrainingPanel(stop_by=stop_by, options=options)


def device_choices(found: GpuList) -> list[str]:
    """What the devices field offers: auto, cpu, each GPU, and all of them together (any other list is typed)."""
    each = [str(gpu.index) for gpu in found.gpus]
    return ["auto", "cpu", *each, *([",".join(each)] if len(each) > 1 else [])]


def build_devices_panel(start: forms.Values, found: GpuList) -> DevicesPanel:
    with gr.Accordion(t("train.devices"), open=False, elem_id="wb-devices") as panel:
        with gr.Row(equal_height=False):
            gpus = gr.Markdown(elem_id="wb-gpus")
            refresh = gr.Button(t("devices.refresh"), size="sm", scale=0, min_width=120, elem_id="wb-gpus-refresh")
        options: dict[FormField, Component] = {}
        with gr.Row(equal_height=False):
            options[DEVICES] = gr.Dropdown(device_choices(found), value=start[DEVICES], allow_custom_value=True,
                                           **labelled(DEVICES, True, 200))
            for field in (STRATEGY, NPROC_PER_NODE):
                options[field] = field_widget(field, start[field], min_width=200)
        with gr.Row(equal_height=False):
            for field in (NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT):
                options[field] = field_widget(field, start[field], min_width=200)
        with gr.Row(equal_height=False):  # what fsdp and deepspeed shard and offload
            for field in (FSDP_OFFLOAD, ZERO_STAGE, ZERO_OFFLOAD):
                options[field] = field_widget(field, start[field], min_width=200)
        commands = gr.Textbox(label=t("devices.commands"), info=t("devices.commands_help"), lines=3,
                              interactive=False, visible=False, elem_id="wb-node-commands")
    return DevicesPanel(gpus=gpus, refresh=refresh, options=options, commands=commands, panel=panel)


def build_config_panel(saved_configs: list[tuple[str, str]], remembered: gr.BrowserState) -> ConfigPanel:
    with gr.Accordion(t("train.config"), open=False) as panel, gr.Row():
        yaml_view = gr.Code(language="yaml", label=t("train.yaml"), lines=14, elem_id="wb-yaml", scale=3)
        with gr.Column(scale=2):
            command = gr.Textbox(label=t("train.command"), info=t("train.command_help"), interactive=False,
                                 elem_id="wb-command")
            config_name = gr.Textbox(label=t("train.config_name"), value="my-run", elem_id="wb-config-name")
            save = gr.Button(t("train.save_config"))
            saved = gr.Dropdown(saved_configs, label=t("train.saved_configs"))
            load = gr.Button(t("train.load_config"))
    return ConfigPanel(yaml=yaml_view, command=command, config_name=config_name, save=save, saved=saved, load=load,
                       panel=panel, remembered=remembered)


def build_monitor_panel() -> MonitorPanel:
    with gr.Row():
        run_name = gr.Textbox(label=t("train.run_name"), placeholder=t("train.run_name_help"), scale=2)
        start = gr.Button(t("train.start"), variant="primary", elem_id="wb-start")
        stop = gr.Button(t("train.stop"), elem_id="wb-stop")
        cancel = gr.Button(t("train.cancel"), variant="stop", elem_id="wb-cancel")
    confirm_cancel = build_confirm("wb-cancel-confirm", "train.cancel_yes", "train.cancel_no")
    progress = gr.HTML("", elem_id="wb-progress")
    also = gr.Markdown("", elem_id="wb-also-training")
    with gr.Row():
        loss = gr.LinePlot(loss_frame({}), x="step", y="loss", color="series", label=t("train.loss"),
                           elem_id="wb-loss", scale=3)
        log = gr.Textbox(label=t("train.log"), lines=14, max_lines=14, elem_classes=["wb-log"], elem_id="wb-log",
                         scale=2)
    return MonitorPanel(run_name=run_name, start=start, stop=stop, cancel=cancel, confirm_cancel=confirm_cancel,
                        progress=progress, loss=loss, loss_colors=colour_state(loss, titled=True), log=log,
                        current=gr.State(None), seen=gr.State(-1), timer=gr.Timer(FOLLOW_S, active=False),
                        watch=gr.Timer(WATCH_S), also=also)


def start_values(starter: RunConfig | None) -> forms.Values:
    """The form's first values: the bundled starter config's, else the schema's defaults."""
    return forms.from_config(starter) if starter else forms.defaults()

