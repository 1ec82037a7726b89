"""Event handlers of the Train tab's form: model, dataset list, method options, config preview, save and load.
Each takes plain values (and the panel whose components it updates) and returns plain values or, for several
outputs, a `{component: value}` dict; errors reach the page as gr.Warning/gr.Error carrying the engine's sentence.

The dataset inspection is in train_data, the trainable count in train_count, the run and its live view in
train_follow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from engine.config import ConfigError, RunConfig, load_config
from engine.datapaths import display_name
from webui.components.widgets import bits_radio_choices, listing
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms.columns import renamed
from webui.forms.datasets import dataset_choices, store_upload
from webui.forms.fields import ADAPTER, BITS, COLUMNS, EPOCHS, MAX_STEPS, OPTIONS
from webui.forms.models import hub_offline, model_info
from webui.i18n import failure, message, pairs_label, sentence, sentences, words
from webui.jobs.boundary import ADAPTER_CONFIG
from webui.jobs.paths import PathError, safe_name
from webui.tabs.train.panels import ConfigPanel, MethodPanel, TrainingPanel, TrainTab, stage_note_text

NEW_RUN = "NEW_RUN"


@dataclass
class Form:
    """The Train form's values, as TrainTab.form_inputs() sends them."""

    model: str
    dataset: str | None
    more: list[str]  # the other datasets trained on with it
    data_format: str
    method: str
    values: forms.Values

    @classmethod
    def parse(cls, args: tuple[Any, ...] | list[Any]) -> Form:
        """ValueError unless `args` holds model, dataset, more datasets, format, method and exactly one value per
        option."""
        model, dataset, more, data_format, method, *options = args
        return cls(model or "", dataset, list(more or []), data_format or "auto", method or "lora",
                   forms.from_widgets(options))

    @property
    def datasets(self) -> list[str]:
        """The dataset, then the more datasets, each once."""
        return list(dict.fromkeys(name for name in [self.dataset, *self.more] if name))

    def config(self, ctx: AppContext, output_dir: Path) -> RunConfig:
        """The form's RunConfig; PathError (before anything outside is looked at) for a model or dataset outside
        the boundary, ConfigError for the rest."""
        paths = {name: ctx.boundary.dataset(name) for name in self.datasets}
        data_path = forms.data_path_for(list(paths.values()))
        model = ctx.boundary.model(self.model)
        maps = self.values[COLUMNS] or {}  # each chosen dataset's column map, keyed by the path the engine gets
        values = {**self.values, COLUMNS: {paths[name]: own for name, own in maps.items() if name in paths}
                  if isinstance(maps, dict) else maps}
        config = forms.to_config(values, model=model, data_path=data_path, data_format=self.data_format,
                                 method=self.method, output_dir=str(output_dir))
        return ctx.boundary.config(config)



def plot_titles(request: gr.Request) -> Any:
    """Axis and legend titles of a loss plot in the visitor's language (the data columns stay step/loss/series)."""
    say = words(request)
    return gr.update(x_title=say("plot.step"), y_title=say("plot.loss"), color_title=say("plot.series"))


def show_model(ctx: AppContext, name: str, request: gr.Request) -> str:
    if not (name or "").strip():
        return ""
    try:
        local = ctx.local_model_dir(name)
    except PathError as error:
        return f"<span class='wb-error'>{error}</span>"
    info = model_info(name.strip(), local)
    info.offline = info.architecture is None and hub_offline()
    return info.markdown(words(request))


def upload_dataset(ctx: AppContext, temp_path: str | None,
                   request: gr.Request | None = None) -> tuple[Any, Any, Any]:
    """Move the upload into WORKSPACE/uploads and choose it as the dataset (the more datasets list it too); the
    upload box is emptied, since the file it showed is no longer in Gradio's cache (the dataset list shows it now)."""
    if not temp_path:
        return gr.update(), gr.update(), gr.update()
    try:
        saved = store_upload(temp_path, ctx.uploads, received_in=Path(get_upload_folder()))
    except PathError as error:
        raise failure(request, str(error)) from None
    except FileNotFoundError:
        raise failure(request, message(request, "msg.upload_gone")) from None
    choices = dataset_choices(ctx.uploads, ctx.assets, pairs_label(request))
    return None, gr.update(choices=choices, value=str(saved)), gr.update(choices=choices)


def remove_upload(ctx: AppContext, dataset: str | None, more: list[str] | None,
                  request: gr.Request | None = None) -> tuple[Any, Any]:
    """Remove the chosen dataset where it is an upload (WORKSPACE/uploads; a bundled set or a file elsewhere is
    refused), unless a queued or training run reads it; the lists no longer offer it."""
    say = words(request)
    if not dataset:
        raise failure(request, say("msg.remove_choose"))
    try:
        path = ctx.boundary.writable(dataset)
    except PathError:
        path = None
    uploads = ctx.uploads.resolve()
    if path is None or path.parent != uploads or not path.is_file():
        raise failure(request, say("msg.remove_not_upload", name=display_name(dataset), folder=uploads))
    for name in [*ctx.runs.training(), *ctx.runs.queued()]:
        try:
            used = {Path(source.path).resolve() for source in ctx.runs.run_dir(name).read_config().data.sources()}
        except (OSError, ValueError):  # its config cannot be read here: it cannot be reading this file either
            continue
        if path in used:
            raise failure(request, say("msg.remove_in_use", name=path.name, run=name))
    path.unlink()
    gr.Info(say("msg.upload_removed", name=path.name), title=say("msg.info_title"))
    choices = dataset_choices(ctx.uploads, ctx.assets, pairs_label(request))
    kept = [name for name in more or [] if name != dataset]
    return gr.update(choices=choices, value=None), gr.update(choices=choices, value=kept)


def list_datasets(ctx: AppContext, request: gr.Request | None = None) -> tuple[Any, Any]:
    """The dataset dropdowns' choices as the workspace holds them now (the chosen files stay chosen)."""
    choices = dataset_choices(ctx.uploads, ctx.assets, pairs_label(request))
    return gr.update(choices=choices), gr.update(choices=choices)


def method_visibility(panel: MethodPanel, method: str, bits: Any) -> dict[Any, Any]:
    """Show the chosen method's options; the bits radio offers what the method can run with and shows what it
    will load (qlora: 4-bit unless 8; lora and dora keep their choice, 16-bit by default)."""
    shown = forms.visible_fields(method)
    updates: dict[Any, Any] = {widget: gr.update(visible=shown[field]) for field, widget in panel.options.items()}
    updates[panel.bits] = gr.update(visible=shown[BITS], choices=bits_radio_choices(method),
                                    value=forms.bits_for(method, bits))
    return updates


def stage_visibility(panel: MethodPanel, stage: str, method: str) -> dict[Any, Any]:
    """Show the chosen stage's options only, and say where the chosen method cannot train it."""
    shown = forms.visible_stage_fields(stage or "sft")
    updates: dict[Any, Any] = {panel.stage[field]: gr.update(visible=visible) for field, visible in shown.items()}
    updates[panel.stage_note] = stage_note_text(stage or "sft", method or "lora")
    return updates


def start_runs(ctx: AppContext) -> list[tuple[str, str]]:
    """The finished runs a run may start from (model.adapter): completed, with an adapter, newest first."""
    return [(f"{info.name} ({info.method}, {info.model.rstrip('/').split('/')[-1]})", str(info.path))
            for info in ctx.runs.list()
            if info.state == "completed" and not info.damaged and (info.path / "adapter" / ADAPTER_CONFIG).is_file()]


def list_start_runs(ctx: AppContext, chosen: str | None, request: gr.Request | None = None) -> Any:
    """The starting-run dropdown's choices as the workspace holds them now (the chosen one stays chosen; "none" in
    the visitor's language)."""
    listed = [(message(request, "train.no_start_run"), ""), *start_runs(ctx)]
    if chosen and chosen not in {value for _, value in listed}:
        listed.append((chosen, chosen))
    return gr.update(choices=listed)


def stop_by_shown(panel: TrainingPanel, stop_by: str) -> dict[Any, Any]:
    """Training for epochs shows the epochs field; for steps, the max-steps field."""
    return {panel.options[EPOCHS]: gr.update(visible=stop_by == "epochs"),
            panel.options[MAX_STEPS]: gr.update(visible=stop_by == "steps")}


def preview(ctx: AppContext, panel: ConfigPanel, config_name: str, *args: Any,
            request: gr.Request | None = None) -> dict[Any, str]:
    """The YAML the run will use and a command that runs exactly it when pasted: the YAML is written to the file
    the command names, and output_dir is WORKSPACE/runs/CONFIG_NAME (as "Save form to YAML" writes it)."""
    return previewed(ctx, panel, config_name, *args, request=request)[0]


def previewed(ctx: AppContext, panel: ConfigPanel, config_name: str, *args: Any, request: gr.Request | None = None
              ) -> tuple[dict[Any, str], RunConfig | None, Path | None]:
    """preview's panel values, with the config they show and the file its command names (None, None where the
    form gives no config: the YAML view then says why, in comments in the visitor's language). A config's YAML is
    the same in every language: its keys and values are what `launch.py train` reads."""
    form = Form.parse(args)
    try:
        name = safe_name((config_name or "").strip() or "my-run")
        config = form.config(ctx, ctx.runs.runs_dir / name)
    except (ConfigError, PathError) as error:
        return {panel.yaml: refused_comments(error, request), panel.command: ""}, None, None
    text = config.to_yaml()
    file = forms.preview_file(ctx.configs, name, text)
    return ({panel.yaml: text, panel.command: forms.command_line(file),
             panel.remembered: text}, config, file)  # remembered: the form as the visitor leaves it (remember.py)


def refused_comments(error: Exception, request: gr.Request | None) -> str:
    """A refused form's problems as the preview's YAML comments, one a line, each in the visitor's language (an
    engine's keyed sentence worded, any other as written); a sentence of several lines stays inside its comment."""
    issues = getattr(error, "issues", [error])
    return "\n".join("# " + sentence(request, issue).replace("\n", "\n# ") for issue in issues)


def save_config(ctx: AppContext, config_name: str, *args: Any, request: gr.Request | None = None) -> Any:
    form = Form.parse(args)
    try:
        name = safe_name((config_name or "").strip() or "my-run")
        config = form.config(ctx, ctx.runs.runs_dir / name)
    except (ConfigError, PathError) as error:
        raise failure(request, sentences(request, error)) from None
    path = ctx.configs / f"{name}.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    gr.Info(message(request, "msg.saved_config", path=path), title=message(request, "msg.info_title"))
    return gr.update(choices=config_choices(ctx), value=str(path))


def save_config_clicked(ctx: AppContext, request: gr.Request, config_name: str, *args: Any) -> Any:
    """save_config for the button: gradio passes `request` only to a parameter before *args."""
    return save_config(ctx, config_name, *args, request=request)


def config_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The saved configs (WORKSPACE/configs), then each run's own config.yaml, newest run first: a finished run's
    settings come back into the form to train again or to change (as LLaMA-Factory loads an output folder's)."""
    saved = [(p.name, str(p)) for p in sorted(ctx.configs.glob("*.yaml"))]
    runs = [ctx.runs.run_dir(info.name).config for info in ctx.runs.list() if not info.damaged]
    return saved + [(f"runs/{path.parent.name}/{path.name}", str(path)) for path in runs if path.is_file()]


def list_configs(ctx: AppContext, chosen: str | None = None) -> Any:
    """The saved configs as WORKSPACE/configs holds them now: those saved since the server started too. The chosen
    one stays chosen while it is listed (a deleted run's config.yaml is not: gradio would refuse it on Load)."""
    return listing(config_choices(ctx), chosen)


def load_saved_config(ctx: AppContext, tab: TrainTab, path: str | None,
                      request: gr.Request | None = None) -> dict[Any, Any]:
    """Fill the form from a saved YAML: model, datasets, format, method, then every option."""
    if not path:
        raise failure(request, message(request, "msg.choose_config"))
    try:
        config = load_config(ctx.writable(path))
        return form_filled(ctx, tab, config, request)
    except (ConfigError, PathError) as error:
        raise failure(request, sentences(request, error)) from None


def form_filled(ctx: AppContext, tab: TrainTab, config: RunConfig,
                request: gr.Request | None = None) -> dict[Any, Any]:
    """The form's values for `config`: model, datasets, format, method, then every option (the stage, its options
    and the starting run included). PathError for a dataset outside the boundary."""
    data = [ctx.boundary.dataset(source.path) for source in config.data.sources()]
    choices = dataset_choices(ctx.uploads, ctx.assets, pairs_label(request))
    listed = {value for _, value in choices}
    choices += [(display_name(name), name) for name in data if name not in listed]
    values = forms.from_config(config)
    values[COLUMNS] = renamed(values[COLUMNS], ctx.boundary.dataset)  # keyed as the dataset dropdowns name them
    # the bits radio gets the loaded method's choices with its value, so the two never disagree
    values[BITS] = gr.update(value=values[BITS], choices=bits_radio_choices(config.method.name))
    if config.model.adapter:  # the starting run, listed where the dropdown does not list it yet
        values[ADAPTER] = gr.update(value=config.model.adapter, choices=list_start_runs(
            ctx, config.model.adapter, request)["choices"])
    widgets = tab.widgets
    return {tab.model.name: config.model.name_or_path, tab.data.dataset: gr.update(choices=choices, value=data[0]),
            tab.data.more: gr.update(choices=choices, value=data[1:]), tab.data.data_format: config.data.format,
            tab.method.name: config.method.name, **{widgets[option]: values[option] for option in OPTIONS}}
