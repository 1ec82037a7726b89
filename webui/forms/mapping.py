"""The one mapping between the Train tab's widget values and RunConfig.

The form's option widgets are typed objects (webui.forms.fields: a FormField per schema field, a Choice for the
stop-by and bits radios). Their values travel as `Values`, a dict keyed by those objects; `from_widgets` builds it
from the widgets' values in the one order of form_fields.OPTIONS (zipped strictly). `to_config` (values ->
validated RunConfig) and `from_config` (RunConfig -> values) are the only functions that know both sides.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.config import ConfigError, MethodConfig, RunConfig, load_config, parse_config
from engine.config_read import sentence
from webui.forms.columns import column_maps, data_columns
from webui.forms.fields import (
    ADAPTER,
    ADVANCED_FIELDS,
    BITS,
    COLUMNS,
    DEVICE_FIELDS,
    EPOCHS,
    FIELDS,
    LEARNING_RATE,
    MAX_STEPS,
    METHOD_OPTIONS,
    METHOD_WIDGETS,
    OPTIONS,
    PROMPT_TUNING_INIT_TEXT,
    REPLACE,
    SECTIONS,
    STAGE,
    STAGE_OPTION_FIELDS,
    STAGE_OPTIONS,
    STOP_BY,
    TARGET_MODULES,
    TRAIN_FIELDS,
    FormField,
    Option,
)

Values = dict[Option, Any]  # every option widget's value, keyed by the option


def bits_choices(method: str) -> tuple[int, ...]:
    """Quantization bits a method runs with: qlora always quantizes (4 or 8 bits); lora and dora may (0 = 16-bit)."""
    return (4, 8) if method == "qlora" else (0, 8, 4)


def bits_for(method: str, bits: Any) -> int:
    """The bits radio's value for `method`: `bits` where the method allows it, else the method's default
    (qlora's 4; 16-bit for the others)."""
    value = int(bits or 0)
    return value if value in bits_choices(method) else (MethodConfig(name=method).effective_bits or 0)


def visible_fields(method: str) -> dict[Option, bool]:
    """option -> visible, for every option of the method panel, given the chosen method."""
    shown = set(METHOD_OPTIONS[method])
    return {option: option in shown for option in METHOD_WIDGETS}


def visible_stage_fields(stage: str) -> dict[FormField, bool]:
    """option -> visible, for every preference option, given the chosen stage (sft and pretrain show none)."""
    shown = set(STAGE_OPTIONS.get(stage, ()))
    return {option: option in shown for option in STAGE_OPTION_FIELDS}


def defaults() -> Values:
    return {option: option.default for option in OPTIONS}


def from_widgets(values: Sequence[Any]) -> Values:
    """The option widgets' values in OPTIONS order -> Values; ValueError when their number is not OPTIONS'."""
    return dict(zip(OPTIONS, values, strict=True))


def widget_values(values: Values) -> list[Any]:
    """Values -> the option widgets' values in OPTIONS order (as the page sends them)."""
    return [values[option] for option in OPTIONS]


def _to_widget(field: FormField, value: Any) -> Any:
    if field.kind == "multiselect":
        return list(value)
    if field.is_list and isinstance(value, list):
        return ", ".join(value)
    if value is None and field.optional and field.kind in ("integer", "number"):
        return 0
    return value


def _from_widget(field: FormField, value: Any) -> Any:
    """Widget value -> config value. Numbers arrive from gr.Number/gr.Slider as int or float."""
    if field.kind == "multiselect":
        return list(value or [])
    if field.is_list:
        names = [n.strip() for n in str(value or "").split(",") if n.strip()]
        return names[0] if field is TARGET_MODULES and names == ["all-linear"] else names
    kind = field.kind
    if value is None or value == "" or (field.optional and kind in ("integer", "number") and not value):
        return None
    try:
        if kind == "integer" or (kind == "slider" and float(field.slider[2]).is_integer()):
            return int(round(float(value)))
        if kind in ("number", "slider"):
            return float(value)
    except (TypeError, ValueError, OverflowError):  # 'ten', inf, a list (an API caller's): the schema says why
        return value
    return value


def data_path_for(paths: list[str]) -> str | list[str]:
    """data.path for the chosen datasets: one as a string (as a config with one dataset has always said it), several
    as a list, none as ""."""
    return paths[0] if len(paths) == 1 else (paths or "")


def to_raw(values: Values, *, model: str, data_path: str | list[str], data_format: str, method: str,
           output_dir: str) -> dict[str, Any]:
    """Widget values -> the plain dict that parse_config validates (only the chosen method's options)."""
    raw: dict[str, Any] = {
        "model": {"name_or_path": (model or "").strip()},
        "method": method_raw(values, method),
        "data": {"path": data_path or "", "format": data_format or "auto"},
        "train": {},
        "output_dir": output_dir,
    }
    for field in TRAIN_FIELDS + ADVANCED_FIELDS:
        value = _from_widget(field, values[field])
        if value is None and field in (EPOCHS, LEARNING_RATE):
            continue  # left blank: the schema's default applies
        raw[SECTIONS[field.section]][field.name] = value
    stage = values[STAGE] or STAGE.default
    raw["train"][STAGE.name] = stage
    for field in STAGE_OPTIONS.get(stage, ()):  # only the chosen stage's options: the others keep their defaults
        raw["train"][field.name] = _from_widget(field, values[field])
    adapter = _from_widget(ADAPTER, values[ADAPTER])
    if adapter:
        raw["model"][ADAPTER.name] = adapter
    replace = values[REPLACE] or {}  # the placeholder fields' texts, as the page keeps them
    raw["data"][REPLACE.name] = dict(replace) if isinstance(replace, dict) else replace  # else: the schema says why
    # each chosen dataset's column map: data.columns for one, each one's own for several (webui.forms.columns)
    raw["data"][COLUMNS.name], raw["data"]["path"] = data_columns(values[COLUMNS], data_path or "", stage)
    for field in DEVICE_FIELDS:  # devices at the top, the others under distributed
        value = _from_widget(field, values[field])
        if value is not None:  # left blank: the schema's default applies
            (raw.setdefault(SECTIONS[field.section], {}) if SECTIONS[field.section] else raw)[field.name] = value
    if values[STOP_BY] == "epochs":
        raw["train"][MAX_STEPS.name] = None
    elif not raw["train"].get(MAX_STEPS.name):
        raise ConfigError(["train.max_steps must be at least 1 when training for a number of steps."], "form")
    return raw


def method_raw(values: Values, method: str) -> dict[str, Any]:
    """The `method` section from widget values: the name and the options the method shows (others keep their
    defaults); the bits are written where the method shows them (qlora's as 4 or 8, so the YAML says what the
    run loads; 16-bit as none)."""
    raw: dict[str, Any] = {"name": method}
    shown = METHOD_OPTIONS.get(method, ())
    for field in shown:
        if isinstance(field, FormField):
            raw[field.name] = _from_widget(field, values[field])
    if BITS in shown:
        raw["bits"] = bits_for(method, values[BITS]) or None
    if method == "prompt" and not raw.get(PROMPT_TUNING_INIT_TEXT.name):
        raw.pop(PROMPT_TUNING_INIT_TEXT.name, None)
    return raw


def method_config(values: Values, method: str) -> MethodConfig:
    """The validated method section of the form alone (what the trainable count needs); ConfigError otherwise."""
    try:
        return MethodConfig.model_validate(method_raw(values, method))
    except ValidationError as error:
        raise ConfigError([sentence(e, ("method",)) for e in error.errors()], "form") from None


def to_config(values: Values, *, model: str, data_path: str | list[str], data_format: str = "auto",
              method: str = "lora", output_dir: str) -> RunConfig:
    """Widget values -> a validated RunConfig; raises engine.config.ConfigError with every issue."""
    raw = to_raw(values, model=model, data_path=data_path, data_format=data_format, method=method,
                 output_dir=output_dir)
    return parse_config(raw, base_dir=Path(output_dir).parent, source="form")


def from_config(config: RunConfig) -> Values:
    """RunConfig -> widget values (for loading a saved YAML back into the form)."""
    values: Values = {field: _to_widget(field, field.read(config)) for field in FIELDS}
    values[STOP_BY] = "steps" if config.train.max_steps else "epochs"
    values[BITS] = config.method.effective_bits or 0  # qlora's default 4 shows as 4-bit
    values[REPLACE] = dict(config.data.replace)
    values[COLUMNS] = column_maps(config.data)
    values[ADAPTER] = config.model.adapter or ""  # the dropdown's "none: start from the base" (None: an empty box)
    return values


STARTER = "demo.yaml"  # in assets/: the page's starting form (demo model, identity set, a LoRA that fits a CPU)


def starter_config(assets: Path) -> RunConfig | None:
    """The bundled starting config, or None where it (or the demo model it names) is not there."""
    path = assets / STARTER
    if not path.is_file():
        return None
    config = load_config(path)
    return config if Path(config.model.name_or_path).is_dir() else None


PREVIEW_DIR = "preview"  # under WORKSPACE/configs: the files the config preview's command names
PREVIEW_LIMIT = 200


def command_line(config_path: Path | str) -> str:
    """The CLI that reproduces a run from its YAML."""
    return f"python launch.py train {config_path}"


def preview_file(configs: Path, name: str, yaml_text: str) -> Path:
    """The file holding exactly the previewed YAML, so the command shown beside it works when pasted:
    configs/preview/NAME-HASH.yaml, one per distinct config (visitors never overwrite each other's; saved
    configs in configs/ are never touched). The oldest beyond PREVIEW_LIMIT are removed."""
    folder = configs / PREVIEW_DIR
    path = folder / f"{name}-{hashlib.sha256(yaml_text.encode()).hexdigest()[:10]}.yaml"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_text(yaml_text, encoding="utf-8")
        os.replace(temp, path)
        for old in sorted(folder.glob("*.yaml"), key=lambda p: p.stat().st_mtime)[:-PREVIEW_LIMIT]:
            old.unlink(missing_ok=True)
    return path
