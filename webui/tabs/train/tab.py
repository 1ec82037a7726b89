"""Train tab: base model, dataset, method, training settings, config preview, start/stop/cancel and
the live view (progress, loss curve, log). Layout is in train_panels; this module builds the tab and wires
its events to the handlers (train_handlers, train_data, train_count, train_follow)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.components.columns import wire_column_fields
from webui.components.widgets import clamp_note
from webui.components.wiring import bind, newest
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms.fields import (
    ADAPTER,
    COUNT_FIELDS,
    CUTOFF_LEN,
    EPOCHS,
    MAX_STEPS,
    OVERLENGTH,
    STAGE,
    STAGE_OPTION_FIELDS,
)
from webui.forms.models import model_choices
from webui.i18n import t
from webui.jobs import devices as gpu_list
from webui.tabs.train import count as train_count
from webui.tabs.train import data as train_data
from webui.tabs.train import devices as train_devices
from webui.tabs.train import estimate as train_estimate
from webui.tabs.train import follow as train_follow
from webui.tabs.train import handlers as h
from webui.tabs.train import remember
from webui.tabs.train.panels import (
    TrainTab,
    build_config_panel,
    build_data_panel,
    build_devices_panel,
    build_method_panel,
    build_model_panel,
    build_monitor_panel,
    build_training_panel,
    start_values,
)
from webui.tabs.train.placeholders import wire_placeholder_fields


def build_train_tab(ctx: AppContext, app: gr.Blocks) -> TrainTab:
    with gr.Tab(t("tab.train"), id="train") as shown:
        gr.Markdown(t("train.intro"))
        starter = forms.starter_config(ctx.assets)  # the demo model and identity set, where bundled
        start = start_values(starter)
        model = build_model_panel(ctx, starter)
        with gr.Accordion(t("train.data"), open=True):
            data = build_data_panel(ctx, starter)
        with gr.Accordion(t("train.method"), open=True):
            method = build_method_panel(start, starter, h.start_runs(ctx))
        with gr.Accordion(t("train.training"), open=True):
            training = build_training_panel(start)
        devices = build_devices_panel(start, gpu_list.list_gpus())
        config = build_config_panel(h.config_choices(ctx), remember.remembered_form(ctx))
        monitor = build_monitor_panel()
    tab = TrainTab(model=model, data=data, method=method, training=training, devices=devices, config=config,
                   monitor=monitor)
    # the form as this browser left it, asked for before the page's own first answers write the defaults' config;
    # then the page's one inspection on opening (of the kept form's dataset, or the starter set's)
    restored = app.load(bind(bind(remember.restore, ctx), tab), config.remembered, tab.form_inputs())
    restored.then(**inspection(ctx, tab))
    # the model's summary too, for the model the kept form names (asked at load, it described the default model,
    # and where that answer came last it stayed under the kept model's name)
    restored.then(bind(h.show_model, ctx), tab.model.name, tab.model.info)
    wire_model_and_data(ctx, tab, app)
    wire_form(ctx, tab, app, restored)
    train_devices.wire_devices(ctx, tab)
    # runs started since the page loaded have their configs too: listed when the tab is shown and the panel opened
    # (not when the list is opened: see webui.tabs.chat)
    for shown_event in (shown.select, config.panel.expand):
        shown_event(bind(h.list_configs, ctx), config.saved, config.saved, show_progress="hidden")
    start_run = method.stage[ADAPTER]  # runs finished since the page loaded can be started from
    tab.monitor.start_run = start_run  # and the run the tab follows, as it ends (webui.tabs.train.follow.poll)
    listing = {"fn": bind(h.list_start_runs, ctx), "inputs": start_run, "outputs": start_run, "show_progress": "hidden"}
    restored.then(**listing)  # (it keeps the chosen run listed: the kept form's, not the default's)
    shown.select(**listing)
    # models exported or first used since the server started are offered when the tab is shown again
    shown.select(lambda: gr.update(choices=model_choices(ctx.workspace, ctx.assets)), None, model.name,
                 show_progress="hidden")
    # pairs rated in the Chat tab since the page loaded are listed (with their count) when the tab is shown again
    shown.select(bind(h.list_datasets, ctx), None, [data.dataset, data.more], show_progress="hidden")
    wire_monitor(ctx, tab, app)
    return tab


def wire_model_and_data(ctx: AppContext, tab: TrainTab, app: gr.Blocks) -> None:
    model, data = tab.model, tab.data
    cutoff_len, overlength = tab.training.options[CUTOFF_LEN], tab.training.options[OVERLENGTH]
    # A new model clears the previous one's info and count in the browser at once (no round trip), before the
    # server's answers for the new model arrive.
    model.name.change(None, None, [model.info, tab.method.trainable], js="() => ['', '']")
    model.name.change(bind(h.show_model, ctx), model.name, model.info)
    data.upload.upload(bind(h.upload_dataset, ctx), data.upload, [data.upload, data.dataset, data.more])
    data.remove.click(bind(h.remove_upload, ctx), [data.dataset, data.more], [data.dataset, data.more])
    # uploads of earlier visits and other visitors
    app.load(bind(h.list_datasets, ctx), None, [data.dataset, data.more])
    # Not on app.load: the inspection after restore (build_train_tab) shows the opening dataset's summary; a second
    # one at load sent the same answer again, which the page redrew (and the preview and estimate ran again).
    # a new stage reads other standard names: the Columns group shows them, the file is read as the stage maps it;
    # a new base model: the example is rendered with its chat template, the lengths counted with its tokenizer
    newest([model.name.change, data.dataset.change, data.more.change, data.data_format.change, cutoff_len.release,
            overlength.change, tab.method.stage[STAGE].change], **inspection(ctx, tab))
    # a placeholder field's text: the preview, example and lengths show the rows filled
    wire_placeholder_fields(data.placeholders, inspection(ctx, tab))
    # a column picked under Columns: the summary, preview and example read the file mapped
    wire_column_fields(data.columns, data.dataset, inspection(ctx, tab))


def inspection(ctx: AppContext, tab: TrainTab) -> dict[str, Any]:
    """The dataset inspection's handler, inputs and outputs: it runs when the dataset or how it is measured
    changes, and after a config is loaded (whose data.replace fills the placeholder fields it shows)."""
    data, options = tab.data, tab.training.options
    return {"fn": bind(bind(train_data.inspect, ctx), data),
            "inputs": [tab.model.name, data.dataset, data.more, data.data_format, options[CUTOFF_LEN],
                       options[OVERLENGTH], data.placeholders.mapping, data.columns.maps, tab.method.stage[STAGE]],
            "outputs": [data.summary, data.preview, data.example, data.rejected, data.histogram, data.over_cutoff,
                        *data.placeholders.outputs, *data.columns.outputs]}


def wire_form(ctx: AppContext, tab: TrainTab, app: gr.Blocks, restored: Any) -> None:
    """The form's own events; `restored` is the page load's restore of the kept form (the opening preview follows
    it)."""
    form = tab.form_inputs()
    method, training, config = tab.method, tab.training, tab.config
    # answered directly: queued, it would be a second queued always_last listener beside the preview (newest())
    training.stop_by.change(bind(h.stop_by_shown, training), training.stop_by,
                            [training.options[EPOCHS], training.options[MAX_STEPS]], queue=False)
    # A new method's count and preview run after its options are shown: the bits radio's choices change with the
    # method, and gradio refuses a value that is not among them.
    method_shown = method.name.change(bind(h.method_visibility, method), [method.name, method.bits],
                                      [*method.options.values(), method.bits])
    # the stage shows its own options; where the method cannot train it, the note says so
    # (after the kept form is put back, not at load: asked with the defaults' stage, that answer came last)
    stage_shown = {"fn": bind(h.stage_visibility, method), "inputs": [method.stage[STAGE], method.name],
                   "outputs": [*(method.stage[f] for f in STAGE_OPTION_FIELDS), method.stage_note],
                   "show_progress": "hidden"}
    gr.on([method.stage[STAGE].change, method.name.change], **stage_shown, queue=False)  # (a second queued one)
    restored.then(**stage_shown)
    plan_triggers = [app.load, tab.model.name.change, tab.data.dataset.change] + [
        method.options[field].change for field in COUNT_FIELDS]
    # Every change starts its own count at once (most are counted from config.json in microseconds); an answer
    # that comes back after a newer request of the same visitor is dropped (train_count.count_trainable).
    count = {"fn": bind(train_count.count_trainable, ctx), "inputs": form, "outputs": method.trainable,
             "concurrency_limit": None, "show_progress": "hidden"}
    gr.on(plan_triggers, trigger_mode="multiple", **count)
    method_shown.then(**count)
    preview = {"fn": bind(bind(train_devices.preview, ctx), tab), "inputs": [config.config_name, *form],
               "outputs": [config.yaml, config.command, config.remembered, tab.devices.commands],
               "show_progress": "hidden"}
    # Not on app.load: the preview writes the form the browser keeps, and one of the page's defaults, beside the
    # restore, would replace the kept form (a reload before the restored form's preview then lost it). After it.
    newest([c.change for c in form if c is not method.name] + [config.config_name.change], **preview)
    restored.then(**preview)
    method_shown.then(**preview)
    estimate = {"fn": bind(train_estimate.estimate_text, ctx), "inputs": form, "outputs": method.estimate,
                "show_progress": "hidden"}
    # and again when the inspection has measured the rows' lengths the estimate counts (a new cutoff, dataset or
    # model is estimated at once with rows of cutoff_len tokens, then with the measured rows when they are in)
    gr.on([app.load, tab.data.histogram.change] + [c.change for c in form if c is not method.name],
          trigger_mode="always_last", **estimate)
    method_shown.then(**estimate)
    config.save.click(bind(h.save_config_clicked, ctx), [config.config_name, *form], config.saved)
    app.load(bind(h.list_configs, ctx), config.saved, config.saved)  # the page was built when the server started
    config.load.click(bind(bind(h.load_saved_config, ctx), tab), config.saved, form).then(**inspection(ctx, tab))
    # A number typed outside a slider's range: one sentence naming the field (webui.components.widgets.
    # clamp_typed_numbers). Every release is answered: a click into the box is a release too (of the number it
    # held), and under gradio's default for release ("once") the typed number's release, sent while that one was
    # still on its way, was dropped, so a cutoff of 4 became 8 without a word.
    for widget in tab.widgets.values():
        if isinstance(widget, gr.Slider):
            widget.release(bind(clamp_note, widget), None, None, show_progress="hidden", trigger_mode="multiple")


def wire_monitor(ctx: AppContext, tab: TrainTab, app: gr.Blocks) -> None:
    panel = tab.monitor
    app.load(h.plot_titles, None, panel.loss)
    timers = [panel.current, panel.seen, panel.timer, panel.watch]
    live = [panel.progress, panel.loss, panel.log, panel.loss_colors]
    panel.start.click(bind(bind(train_follow.start, ctx), panel), [panel.run_name, *tab.form_inputs()],
                      [*timers, panel.run_name])
    # the config preview's YAML and command name the folder Start trains into: a typed run name is the config's name
    # too (in the browser: the preview follows its change); the box empties after Start, the config name stays
    panel.run_name.change(None, [panel.run_name, tab.config.config_name], tab.config.config_name,
                          js="(name, current) => name.trim() || current")
    panel.stop.click(bind(train_follow.stop, ctx), panel.current, None)
    panel.cancel.click(bind(train_follow.ask_cancel, ctx), panel.current, panel.confirm_cancel.outputs)
    panel.confirm_cancel.yes.click(bind(bind(train_follow.cancel, ctx), panel), panel.confirm_cancel.pending,
                                   [*panel.confirm_cancel.outputs, *timers, *live])
    panel.timer.tick(bind(bind(train_follow.poll, ctx), panel), [panel.current, panel.seen],
                     [*timers, *live, panel.also, *([panel.start_run] if panel.start_run else [])],
                     show_progress="hidden")
    # After a reload (or a restart of launch.py) the page follows the run that is training now; while it follows
    # none, the watch looks for one (train_follow).
    follow = bind(bind(train_follow.watch, ctx), panel)
    app.load(follow, None, [*timers, panel.also])
    panel.watch.tick(follow, panel.current, [*timers, panel.also], show_progress="hidden")
