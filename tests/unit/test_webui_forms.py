"""The form <-> RunConfig mapping (webui.forms.mapping): one place, driven by the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import METHOD_NAMES, ConfigError, MethodConfig, RunConfig, choices, load_config
from tests.train_tab import train_tab
from webui.forms import fields as ff
from webui.forms import mapping as forms


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    return path


def make(values: dict, data_file: Path, method: str = "lora") -> RunConfig:
    return forms.to_config({**forms.defaults(), **values}, model="tiny", data_path=str(data_file),
                           method=method, output_dir=str(data_file.parent / "run"))


def test_every_field_is_a_schema_field():
    for field in ff.FIELDS:
        assert field.name in field.section.model_fields, field.key
        assert field.help, f"{field.key} has no help text"
    assert all(option.help for option in ff.OPTIONS)


def test_every_method_has_an_options_row():
    assert set(forms.METHOD_OPTIONS) == set(METHOD_NAMES)
    assert set(forms.visible_fields("lora")) == {*ff.METHOD_FIELDS, ff.BITS}


def test_widget_kinds_and_choices_come_from_the_schema():
    assert ff.LR_SCHEDULER_TYPE.kind == "dropdown"
    train_section = type(RunConfig.model_fields["train"].default_factory())
    assert ff.LR_SCHEDULER_TYPE.choices == choices(train_section, "lr_scheduler_type")
    assert ff.R.kind == "slider"
    assert ff.BATCH_SIZE.kind == "integer"
    assert ff.BATCH_SIZE.minimum == 1
    assert ff.LEARNING_RATE.kind == "number"
    assert ff.USE_RSLORA.kind == "checkbox"
    assert ff.ENCODER_REPARAMETERIZATION_TYPE.choices == choices(MethodConfig, "encoder_reparameterization_type")


def test_defaults_make_a_valid_lora_config(data_file):
    config = make({}, data_file)
    assert config.method.name == "lora"
    assert config.train.max_steps is None
    assert config.data.path == str(data_file)
    assert config.method.target_modules == "all-linear"


def test_numbers_are_typed_and_steps_mode(data_file):
    config = make({ff.STOP_BY: "steps", ff.MAX_STEPS: 7.0, ff.R: 16.0, ff.BATCH_SIZE: 2.0,
                   ff.LEARNING_RATE: 1e-3, ff.TARGET_MODULES: "q_proj, v_proj", ff.BITS: 8},
                  data_file)
    assert config.train.max_steps == 7 and isinstance(config.train.max_steps, int)
    assert config.method.r == 16 and isinstance(config.method.r, int)
    assert config.train.batch_size == 2
    assert config.train.learning_rate == pytest.approx(1e-3)
    assert config.method.target_modules == ["q_proj", "v_proj"]
    assert config.method.bits == 8


def test_options_of_other_methods_keep_their_defaults(data_file):
    config = make({ff.R: 64, ff.NUM_VIRTUAL_TOKENS: 5, ff.BITS: 4}, data_file, method="prefix")
    assert config.method.num_virtual_tokens == 5
    assert config.method.r == MethodConfig().r
    assert config.method.bits is None  # a hidden widget's value never reaches the config


def test_round_trip_through_yaml(data_file):
    config = make({ff.STOP_BY: "steps", ff.MAX_STEPS: 3, ff.R: 4, ff.BITS: 4}, data_file,
                  method="qlora")
    values = forms.from_config(config)
    assert values[ff.STOP_BY] == "steps" and values[ff.BITS] == 4
    again = forms.to_config(values, model=config.model.name_or_path, data_path=config.data.path,
                            method=config.method.name, output_dir=config.output_dir)
    assert again.to_yaml() == config.to_yaml()


def test_trackers_are_a_multiselect_of_the_schemas_names(data_file):
    assert ff.REPORT_TO.kind == "multiselect" and "tensorboard" in ff.REPORT_TO.choices
    assert forms.defaults()[ff.REPORT_TO] == ["tensorboard"]
    config = make({ff.REPORT_TO: ["tensorboard", "trackio"]}, data_file)
    assert config.train.report_to == ["tensorboard", "trackio"]
    assert forms.from_config(config)[ff.REPORT_TO] == ["tensorboard", "trackio"]
    assert make({ff.REPORT_TO: []}, data_file).train.report_to == ["none"]  # nothing chosen: no tracker


def test_issues_are_sentences(data_file):
    with pytest.raises(ConfigError) as error:
        make({ff.TARGET_MODULES: " , "}, data_file, method="lora")
    assert any("target_modules" in issue for issue in error.value.issues)
    with pytest.raises(ConfigError) as error:
        forms.to_config(forms.defaults(), model="m", data_path=str(data_file.parent / "missing.jsonl"),
                        output_dir=str(data_file.parent / "run"))
    assert "does not exist" in " ".join(error.value.issues)


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory):
    from webui.context import AppContext

    return train_tab(AppContext.create(tmp_path_factory.mktemp("ws")))


def test_save_form_to_yaml_and_load_it_back(tmp_path: Path, data_file: Path):
    from webui.context import AppContext
    from webui.tabs.train import handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    tab = train_tab(ctx)
    values = {**forms.defaults(), ff.STOP_BY: "steps", ff.MAX_STEPS: 5, ff.NUM_VIRTUAL_TOKENS: 7}
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text(data_file.read_text())
    args = ["tiny", str(dataset), [], "alpaca", "prompt", *forms.widget_values(values)]
    shown = h.preview(ctx, tab.config, "exp1", *args)
    assert "num_virtual_tokens: 7" in shown[tab.config.yaml]
    h.save_config(ctx, "exp1", *args)
    loaded = h.load_saved_config(ctx, tab, str(ctx.configs / "exp1.yaml"))
    assert set(loaded) == set(tab.form_inputs())  # every input of the form is filled
    widgets = tab.widgets
    bits = loaded[widgets[ff.BITS]]
    assert [value for _, value in bits["choices"]] == list(forms.bits_choices("prompt"))  # with the method's choices
    loaded[widgets[ff.BITS]] = bits["value"]
    assert loaded[tab.model.name] == "tiny" and loaded[tab.data.dataset]["value"] == str(dataset)
    assert [loaded[tab.data.data_format], loaded[tab.method.name]] == ["alpaca", "prompt"]
    shown = {option: loaded[widgets[option]] for option in ff.OPTIONS}
    # no starting run is the dropdown's "none" entry, "" (None left the box empty after a reload or a Load)
    assert shown == {**values, ff.EPOCHS: loaded[widgets[ff.EPOCHS]], ff.ADAPTER: ""}
    with pytest.raises(Exception, match="outside the workspace"):
        h.load_saved_config(ctx, tab, "/etc/passwd")


def test_a_preference_config_loads_into_the_form_with_its_stage_options_and_starting_run(tmp_path: Path,
                                                                                         data_file: Path):
    """A saved DPO config that starts from a finished run loads into the form keeping train.stage, its options and
    model.adapter; the form then writes the same YAML back (nothing dropped, so Start trains what was saved)."""
    import yaml

    from webui.context import AppContext
    from webui.tabs.train import handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    tab = train_tab(ctx)
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text(data_file.read_text())
    sft = ctx.runs.runs_dir / "my-sft"
    (sft / "adapter").mkdir(parents=True)
    values = {**forms.defaults(), ff.STAGE: "dpo", ff.BETA: 0.25, ff.LOSS_TYPE: "ipo", ff.RPO_ALPHA: 1.0,
              ff.SIMPO_GAMMA: 0.9, ff.ADAPTER: str(sft)}
    args = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)]
    h.save_config(ctx, "dpo", *args)
    saved = yaml.safe_load((ctx.configs / "dpo.yaml").read_text())
    assert saved["model"]["adapter"] == str(sft)
    assert {k: saved["train"][k] for k in ("stage", "beta", "loss_type", "rpo_alpha", "simpo_gamma")} == {
        "stage": "dpo", "beta": 0.25, "loss_type": "ipo", "rpo_alpha": 1.0, "simpo_gamma": 0.5}  # not DPO's: default
    loaded = h.load_saved_config(ctx, tab, str(ctx.configs / "dpo.yaml"))
    widgets = tab.widgets
    assert unwrapped(loaded[widgets[ff.ADAPTER]]) == str(sft)
    assert [loaded[widgets[f]] for f in (ff.STAGE, ff.BETA, ff.LOSS_TYPE)] == ["dpo", 0.25, "ipo"]
    again = [unwrapped(loaded[widget]) for widget in tab.form_inputs()]
    assert h.preview(ctx, tab.config, "dpo", *again)[tab.config.yaml] == (ctx.configs / "dpo.yaml").read_text()


def test_the_stage_shows_only_its_options_and_says_where_the_method_cannot_train_it(tab):
    from webui.tabs.train import handlers as h

    for stage, names in {"sft": set(), "dpo": {"beta", "loss_type", "label_smoothing", "rpo_alpha",
                                               "max_prompt_length"},
                         "simpo": {"beta", "simpo_gamma", "max_prompt_length"},
                         "kto": {"beta", "desirable_weight", "undesirable_weight", "max_prompt_length"}}.items():
        updates = h.stage_visibility(tab.method, stage, "lora")
        shown = {f.name for f in ff.STAGE_OPTION_FIELDS if updates[tab.method.stage[f]]["visible"]}
        assert shown == names, stage
        assert updates[tab.method.stage_note] == ""
    assert "method 'prefix' cannot train a preference stage" in h.stage_visibility(tab.method, "dpo", "prefix")[
        tab.method.stage_note]
    assert h.stage_visibility(tab.method, "dpo", "full")[tab.method.stage_note] == ""  # a frozen reference copy
    assert h.stage_visibility(tab.method, "orpo", "full")[tab.method.stage_note] == ""


def test_each_runs_config_is_offered_newest_first_and_fills_the_form(tmp_path: Path, data_file: Path):
    """A run's own config.yaml (the engine writes it as the run starts) is offered after the saved configs, newest
    run first, damaged runs left out, and fills the form as a saved config does: a completed run trains again, or
    changed, from its settings."""
    import json
    import os

    from webui.context import AppContext
    from webui.tabs.train import handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    tab = train_tab(ctx)
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text(data_file.read_text())
    values = {**forms.defaults(), ff.STOP_BY: "steps", ff.MAX_STEPS: 5, ff.R: 4}
    h.save_config(ctx, "saved", "tiny", str(dataset), [], "alpaca", "dora", *forms.widget_values(values))
    for age, name in enumerate(["newer", "older"]):
        run = ctx.runs.runs_dir / name
        run.mkdir(parents=True)
        config = forms.to_config({**values, ff.R: 8 * (age + 1)}, model="tiny", data_path=str(dataset),
                                 method="lora", output_dir=str(run))
        (run / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        (run / "status.json").write_text(json.dumps({"state": "completed", "pid": None, "error": None}))
        os.utime(run / "config.yaml", (1e9 - age, 1e9 - age))
    damaged = ctx.runs.runs_dir / "damaged"
    damaged.mkdir()
    (damaged / "config.yaml").write_text("model: [", encoding="utf-8")
    (damaged / "status.json").write_text(json.dumps({"state": "completed", "pid": None, "error": None}))

    ctx.runs.scheduler.scan()  # the snapshot is a second old at most; the test does not wait for it
    choices = h.config_choices(ctx)
    assert [label for label, _ in choices] == ["saved.yaml", "runs/newer/config.yaml", "runs/older/config.yaml"]
    loaded = h.load_saved_config(ctx, tab, choices[2][1])
    widgets = tab.widgets
    assert [loaded[tab.model.name], unwrapped(loaded[tab.data.dataset]), loaded[tab.method.name]] == [
        "tiny", str(dataset), "lora"]
    assert (loaded[widgets[ff.R]], loaded[widgets[ff.MAX_STEPS]]) == (16, 5)


def unwrapped(value):
    """A handler's output as the widget then holds it (gr.update(value=...) -> its value)."""
    return value["value"] if isinstance(value, dict) and value.get("__type__") == "update" else value


def test_two_datasets_round_trip_through_the_form_and_a_saved_yaml(tmp_path: Path, data_file: Path):
    """The dataset and the more datasets become one data.path list (the dataset first, each once); a saved YAML
    loads back into the same two widgets, and one dataset alone is still written as a string."""
    import yaml

    from webui.context import AppContext
    from webui.tabs.train import handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    tab = train_tab(ctx)
    first, second = ctx.uploads / "first.jsonl", ctx.uploads / "second.jsonl"
    for path in (first, second):
        path.write_text(data_file.read_text())
    values = forms.widget_values(forms.defaults())
    args = ["tiny", str(first), [str(second), str(first)], "auto", "lora", *values]
    shown = h.preview(ctx, tab.config, "two", *args)[tab.config.yaml]
    assert yaml.safe_load(shown)["data"]["path"] == [str(first), str(second)], shown
    h.save_config(ctx, "two", *args)
    loaded = h.load_saved_config(ctx, tab, str(ctx.configs / "two.yaml"))
    assert unwrapped(loaded[tab.data.dataset]) == str(first) and unwrapped(loaded[tab.data.more]) == [str(second)]
    assert str(second) in [value for _, value in loaded[tab.data.more]["choices"]]
    again = [unwrapped(loaded[widget]) for widget in tab.form_inputs()]
    assert h.preview(ctx, tab.config, "two", *again)[tab.config.yaml] == shown  # the same config, both datasets

    single = h.preview(ctx, tab.config, "one", "tiny", str(first), [], "auto", "lora", *values)[tab.config.yaml]
    assert yaml.safe_load(single)["data"]["path"] == str(first)
    only_more = h.preview(ctx, tab.config, "one", "tiny", None, [str(second)], "auto", "lora", *values)
    assert yaml.safe_load(only_more[tab.config.yaml])["data"]["path"] == str(second)
    config = forms.to_config(forms.defaults(), model="tiny", data_path=[str(first), str(second)],
                             output_dir=str(tmp_path / "run"))
    assert [source.path for source in config.data.sources()] == [str(first), str(second)]


def test_preview_command_names_a_file_holding_the_preview(tmp_path: Path, data_file: Path):
    """The command beside the config preview works when pasted: the file it names exists and holds exactly the
    previewed YAML, whose output_dir is a real run folder named after the config (no NEW_RUN placeholder)."""
    from webui.context import AppContext
    from webui.tabs.train import handlers as h

    ctx = AppContext.create(tmp_path / "ws")
    panel = train_tab(ctx).config
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text(data_file.read_text())
    values = {**forms.defaults(), ff.STOP_BY: "steps", ff.MAX_STEPS: 2}
    args = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)]
    shown = h.preview(ctx, panel, "exp-2", *args)
    yaml_text, command = shown[panel.yaml], shown[panel.command]
    program, path = command.rsplit(" ", 1)
    assert program == "python launch.py train"
    assert Path(path).read_text(encoding="utf-8") == yaml_text
    assert Path(path).parent == ctx.configs / forms.PREVIEW_DIR  # saved configs in configs/ are never overwritten
    assert load_config(path).output_dir == str(ctx.runs.runs_dir / "exp-2")
    assert "NEW_RUN" not in yaml_text
    values[ff.R] = 4
    other = h.preview(ctx, panel, "exp-2", *["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)])
    # one file per config
    assert other[panel.command] != command and Path(path).read_text(encoding="utf-8") == yaml_text
    assert h.config_choices(ctx) == []  # the preview files are not offered as saved configs


@pytest.mark.parametrize("method, chosen, shown", [
    ("qlora", 0, 4),  # qlora loads 4-bit: its radio never says 16-bit
    ("qlora", 8, 8),
    ("lora", 0, 0),
    ("dora", 8, 8),
    ("lora", 4, 4),
])
def test_bits_radio_shows_what_the_run_loads(data_file, tab, method, chosen, shown):
    from webui.tabs.train import handlers as h

    assert forms.bits_for(method, chosen) == shown
    assert shown in forms.bits_choices(method)
    assert (0 in forms.bits_choices(method)) == (method != "qlora")
    update = h.method_visibility(tab.method, method, chosen)[tab.method.bits]
    assert update["value"] == shown and [value for _, value in update["choices"]] == list(forms.bits_choices(method))
    config = make({ff.BITS: chosen}, data_file, method=method)
    assert (config.method.effective_bits or 0) == shown  # the YAML and the run agree with the radio
    assert forms.from_config(config)[ff.BITS] == shown


def test_qlora_config_without_bits_loads_as_4_bit(data_file):
    config = make({}, data_file, method="qlora").model_copy(
        update={"method": MethodConfig(name="qlora", bits=None)})
    assert forms.from_config(config)[ff.BITS] == 4


def test_method_rows_place_every_option_once_and_never_more_than_four():
    placed = [option for row in ff.METHOD_ROWS for option in row]
    assert sorted(o.key for o in placed) == sorted(o.key for o in ff.METHOD_WIDGETS)
    assert len(set(placed)) == len(placed) == len(ff.METHOD_WIDGETS)
    for method in METHOD_NAMES:
        shown = forms.visible_fields(method)
        for row in ff.METHOD_ROWS:
            assert sum(shown[key] for key in row) <= 4, (method, row)


def test_count_fields_are_method_options():
    assert set(ff.COUNT_FIELDS) <= set(ff.METHOD_FIELDS)


def changed(field: ff.FormField):
    """A valid widget value for `field` other than its default."""
    if field.kind == "checkbox":
        return not field.default
    if field is ff.KERNELS:  # none, which needs no package (liger needs liger-kernel)
        return "none"
    if field.kind == "dropdown":
        return next(choice for choice in field.choices if choice != field.default)
    if field.kind == "multiselect":  # the first choice alone (report_to: none, which needs no package)
        return [field.choices[0]]
    if field.kind == "slider":
        return round(field.default + field.slider[2], 6)
    if field.kind in ("integer", "number"):
        return (field.default or 0) + 3
    return {ff.TARGET_MODULES: "q_proj, v_proj", ff.PROMPT_TUNING_INIT_TEXT: "Hello",
            ff.METRIC_FOR_BEST: "eval_rewards/accuracies", ff.ADAPTER: "/runs/sft", ff.DEVICES: "cpu",
            ff.MASTER_ADDR: "10.0.0.1"}[field]


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_option_round_trips_keyed_by_its_object(data_file, method):
    """Every widget value the chosen method uses reaches the config and comes back to the same widget (keyed by
    the field objects); the options the method does not show keep their defaults."""
    values = {**forms.defaults(), **{field: changed(field) for field in ff.FIELDS}, ff.STOP_BY: "steps", ff.BITS: 8}
    values[ff.STAGE] = {"lora": "simpo", "dora": "kto", "qlora": "orpo", "full": "orpo"}.get(method, "pretrain")
    values[ff.STRATEGY] = "ddp"  # fsdp and deepspeed are refused for now (engine/config_distributed.py)
    if method == "qlora":  # one process: QLoRA in several is refused for now
        values.update({ff.NPROC_PER_NODE: 1, ff.NNODES: 1, ff.NODE_RANK: 0})
    config = make(values, data_file, method=method)
    back = forms.from_config(config)
    shown = set(ff.METHOD_OPTIONS[method]) | set(ff.STAGE_OPTIONS[values[ff.STAGE]])
    assert config.train.stage == values[ff.STAGE]
    for option in ff.OPTIONS:
        used = option not in (*ff.METHOD_WIDGETS, *ff.STAGE_OPTION_FIELDS) or option in shown
        expected = values[option] if used else forms.defaults()[option]
        assert back[option] == (pytest.approx(expected) if isinstance(expected, float) else expected), option.key


def test_widget_values_are_zipped_strictly_in_one_order(tab):
    from webui.tabs.train.handlers import Form

    values = forms.defaults()
    ordered = forms.widget_values(values)
    assert forms.from_widgets(ordered) == values
    with pytest.raises(ValueError):
        forms.from_widgets(ordered[:-1])  # one value short: never silently dropped
    with pytest.raises(ValueError):
        forms.from_widgets([*ordered, 1])
    with pytest.raises(ValueError):
        Form.parse(["tiny", "d.jsonl", [], "auto", "lora", *ordered[1:]])
    assert Form.parse(["tiny", "d.jsonl", [], "auto", "lora", *ordered]).values == values
    inputs = tab.form_inputs()
    assert len(inputs) == 5 + len(ff.OPTIONS) and len(set(map(id, inputs))) == len(inputs)
    assert [tab.widgets[option] for option in ff.OPTIONS] == inputs[5:]


def test_widgets_keep_their_translation_keys_and_element_ids(tab):
    """Locales and browser tests know the widgets by their dotted keys (field.KEY, help.KEY, #f-KEY)."""
    assert {option.key for option in ff.OPTIONS} >= {"ui.stop_by", "method.bits", "train.cutoff_len", "method.r"}
    for option, widget in tab.widgets.items():
        assert widget.elem_id == "f-" + option.key.replace(".", "-").replace("_", "-")
    assert tab.training.stop_by.elem_id == "f-ui-stop-by" and tab.method.bits.elem_id == "f-method-bits"
    assert set(tab.method.options) == set(ff.METHOD_FIELDS)
    assert set(tab.training.options) == set(ff.TRAIN_FIELDS + ff.ADVANCED_FIELDS)


def test_method_change_updates_every_option_of_the_method_panel(tab):
    from webui.tabs.train import handlers as h

    for method in METHOD_NAMES:
        updates = h.method_visibility(tab.method, method, 0)
        assert set(updates) == {*tab.method.options.values(), tab.method.bits}
        visible = {option for option, widget in tab.widgets.items() if updates.get(widget, {}).get("visible")}
        assert visible == set(ff.METHOD_OPTIONS[method])
    by = h.stop_by_shown(tab.training, "steps")
    assert by == {tab.training.options[ff.EPOCHS]: {"__type__": "update", "visible": False},
                  tab.training.options[ff.MAX_STEPS]: {"__type__": "update", "visible": True}}


def test_a_field_must_name_a_schema_field():
    with pytest.raises(ValueError):
        ff.FormField(MethodConfig, "rank")


def test_a_slider_recreated_for_a_session_still_brings_a_typed_number_into_its_range():
    """Gradio re-creates a component from its constructor arguments for a session once an event updates it (the
    Train form's restore on page load does): the clamp must hold for that copy too, not only for the first."""
    import gradio as gr

    from webui.components import widgets

    widgets.clamp_typed_numbers()  # again: set once, a second call changes nothing
    built = gr.Slider(8, 100, value=10, step=1, render=False)
    again = built.__class__(**{**built.constructor_args, "render": False})
    assert [again.preprocess(typed) for typed in (1, 50, 1000)] == [8, 50, 100]


def test_a_pair_shows_its_chosen_and_rejected_sides_side_by_side(tab):
    """The inspection of a pairs file fills the example with the chosen side and the box beside it with the
    rejected side, each with its trained span; an SFT file's example hides the second box."""
    from webui.tabs.train import data as train_data

    side = {"text": "<user>Hi</user><bot>Hello.</bot>", "spans": [[20, 26]]}
    report = {"pair": {"chosen": side, "rejected": {**side, "text": side["text"].replace("Hello", "Go aw")}}}
    shown = train_data.pair_view(tab.data, report, None)
    assert shown[tab.data.example]["visible"] and shown[tab.data.rejected]["visible"]
    assert ("Hello.", "trained") in shown[tab.data.example]["value"]
    assert ("Go aw.", "trained") in shown[tab.data.rejected]["value"]
    assert shown[tab.data.rejected]["label"].startswith("Rejected")
    sft = train_data.pair_view(tab.data, {"example": side}, None)
    assert sft[tab.data.rejected] == {"__type__": "update", "visible": False}


def test_an_untouched_rpo_alpha_is_off(data_file):
    """The RPO weight's box shows 0 for off and 0 reads back as off (None), not as an RPO loss of weight 0."""
    config = make({ff.STAGE: "dpo", ff.RPO_ALPHA: 0}, data_file)
    assert config.train.rpo_alpha is None and forms.from_config(config)[ff.RPO_ALPHA] == 0
    assert make({ff.STAGE: "dpo", ff.RPO_ALPHA: 1.0}, data_file).train.rpo_alpha == 1.0
