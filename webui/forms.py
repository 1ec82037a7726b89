"""The one mapping between the Train tab's widget values and RunConfig.

Widgets are keyed by the RunConfig path they edit ("method.r", "train.learning_rate"); their kind,
choices, bounds and help all come from engine.config, so the form cannot drift from the schema.
`to_config` (values -> validated RunConfig) and `from_config` (RunConfig -> values) are the only
functions that know both sides.
"""

from __future__ import annotations

import hashlib
import os
import threading
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from engine.config import (
    ConfigError,
    DataConfig,
    MethodConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    choices,
    field_help,
    load_config,
    parse_config,
)

SECTIONS: dict[str, type[BaseModel]] = {
    "model": ModelConfig,
    "method": MethodConfig,
    "data": DataConfig,
    "train": TrainConfig,
}
Kind = Literal["number", "integer", "slider", "checkbox", "dropdown", "radio", "text"]

STOP_BY = "ui.stop_by"  # form-only: train for a number of epochs or of steps
STOP_BY_CHOICES = ("epochs", "steps")
BITS_CHOICES = (0, 4, 8)  # 0 = full precision; the schema says None
BITS_LABELS = {0: "16-bit", 8: "8-bit", 4: "4-bit"}


@dataclass(frozen=True)
class FormField:
    """One widget of the form: the config path it edits and, for sliders, its range."""

    key: str
    slider: tuple[float, float, float] | None = None  # (minimum, maximum, step)

    @property
    def section(self) -> type[BaseModel]:
        return SECTIONS[self.key.split(".")[0]]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    @property
    def help(self) -> str:
        if self.key == STOP_BY:
            return "Stop after a number of epochs or after a number of optimizer steps."
        return field_help(self.section, self.name)

    @property
    def optional(self) -> bool:
        """A number the schema allows to be None; its widget shows 0 for None ("off / default")."""
        if self.key == STOP_BY or self.key == "method.bits":
            return False
        return type(None) in typing.get_args(self.section.model_fields[self.name].annotation)

    @property
    def default(self) -> Any:
        if self.key == STOP_BY:
            return "epochs"
        if self.key == "method.bits":
            return 0
        info = self.section.model_fields[self.name]
        value = info.get_default(call_default_factory=True)
        return 0 if value is None and self.kind == "integer" else value

    @property
    def choices(self) -> tuple[Any, ...]:
        if self.key == STOP_BY:
            return STOP_BY_CHOICES
        if self.key == "method.bits":
            return BITS_CHOICES
        annotation = self.section.model_fields[self.name].annotation
        literal = typing.get_origin(annotation) is Literal or any(
            typing.get_origin(a) is Literal for a in typing.get_args(annotation))
        return choices(self.section, self.name) if literal else ()

    @property
    def minimum(self) -> float | None:
        if self.optional and self.kind == "integer":
            return 0
        for meta in self.section.model_fields[self.name].metadata if self.key != STOP_BY else ():
            for attr in ("ge", "gt"):
                if getattr(meta, attr, None) is not None:
                    return getattr(meta, attr)
        return None

    @property
    def kind(self) -> Kind:
        if self.key in (STOP_BY, "method.bits"):
            return "radio"
        if self.slider:
            return "slider"
        annotation = self.section.model_fields[self.name].annotation
        base = {a for a in typing.get_args(annotation) if a is not type(None)} or {annotation}
        if base == {bool}:
            return "checkbox"
        if self.choices:
            return "dropdown"
        if base == {int}:
            return "integer"
        if base == {float}:
            return "number"
        return "text"


def _fields(*specs: str | tuple[str, tuple[float, float, float]]) -> tuple[FormField, ...]:
    return tuple(FormField(s) if isinstance(s, str) else FormField(s[0], s[1]) for s in specs)


METHOD_FIELDS = _fields(
    ("method.r", (1, 256, 1)),
    ("method.lora_alpha", (1, 512, 1)),
    ("method.lora_dropout", (0, 0.5, 0.01)),
    "method.target_modules",
    "method.use_rslora",
    "method.bits",
    "method.bnb_4bit_quant_type",
    "method.bnb_4bit_use_double_quant",
    "method.bnb_4bit_compute_dtype",
    ("method.num_virtual_tokens", (1, 256, 1)),
    "method.prefix_projection",
    "method.encoder_hidden_size",
    "method.prompt_tuning_init",
    "method.prompt_tuning_init_text",
    "method.encoder_reparameterization_type",
    "method.freeze_trainable_layers",
)
TRAIN_FIELDS = _fields(
    STOP_BY,
    "train.epochs",
    "train.max_steps",
    "train.learning_rate",
    "train.batch_size",
    "train.gradient_accumulation_steps",
    ("train.cutoff_len", (8, 8192, 8)),
    ("train.warmup_ratio", (0, 0.5, 0.01)),
    "train.lr_scheduler_type",
    ("data.val_size", (0, 0.5, 0.01)),
    "train.save_steps",
    "train.seed",
)
ADVANCED_FIELDS = _fields(
    "data.overlength",
    "data.max_samples",
    "train.optim",
    "train.weight_decay",
    "train.max_grad_norm",
    "train.logging_steps",
    "train.eval_steps",
    "train.save_total_limit",
    "train.gradient_checkpointing",
    "train.packing",
    "model.dtype",
    "model.trust_remote_code",
)
FIELDS: tuple[FormField, ...] = METHOD_FIELDS + TRAIN_FIELDS + ADVANCED_FIELDS
FIELD_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS)
BY_KEY: dict[str, FormField] = {f.key: f for f in FIELDS}

_LORA = ("method.r", "method.lora_alpha", "method.lora_dropout", "method.target_modules", "method.use_rslora")
_BNB = ("method.bnb_4bit_quant_type", "method.bnb_4bit_use_double_quant", "method.bnb_4bit_compute_dtype")
# Which options each method shows (a table, not an if-chain); every other method option keeps its default.
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "lora": _LORA + ("method.bits",),
    "dora": _LORA + ("method.bits",),
    "qlora": _LORA + ("method.bits",) + _BNB,
    "prefix": ("method.num_virtual_tokens", "method.prefix_projection", "method.encoder_hidden_size"),
    "prompt": ("method.num_virtual_tokens", "method.prompt_tuning_init", "method.prompt_tuning_init_text"),
    "ptuning": ("method.num_virtual_tokens", "method.encoder_reparameterization_type", "method.encoder_hidden_size"),
    "ia3": ("method.target_modules",),
    "full": (),
    "freeze": ("method.freeze_trainable_layers",),
}


# How the method options are laid out: rows that never show more than four options for any method, so no
# label is squeezed at the page's width (tests/test_webui_forms.py checks every field has exactly one place).
METHOD_ROWS: tuple[tuple[str, ...], ...] = (
    ("method.r", "method.lora_alpha", "method.lora_dropout", "method.target_modules"),
    ("method.use_rslora", "method.bits", "method.freeze_trainable_layers"),
    ("method.bnb_4bit_quant_type", "method.bnb_4bit_use_double_quant", "method.bnb_4bit_compute_dtype"),
    ("method.num_virtual_tokens", "method.prefix_projection", "method.prompt_tuning_init",
     "method.prompt_tuning_init_text", "method.encoder_reparameterization_type", "method.encoder_hidden_size"),
)


# The method options that change the trainable count (the page recounts when one changes).
COUNT_FIELDS = ("method.r", "method.target_modules", "method.num_virtual_tokens", "method.prefix_projection",
                "method.encoder_hidden_size", "method.encoder_reparameterization_type",
                "method.freeze_trainable_layers")


def bits_choices(method: str) -> tuple[int, ...]:
    """Quantization bits a method runs with: qlora always quantizes (4 or 8 bits); lora and dora may (0 = 16-bit)."""
    return (4, 8) if method == "qlora" else (0, 8, 4)


def bits_for(method: str, bits: Any) -> int:
    """The bits radio's value for `method`: `bits` where the method allows it, else the method's default
    (qlora's 4; 16-bit for the others)."""
    value = int(bits or 0)
    return value if value in bits_choices(method) else (MethodConfig(name=method).effective_bits or 0)


def visible_fields(method: str) -> dict[str, bool]:
    """key -> visible, for every method option field, given the chosen method."""
    shown = set(METHOD_OPTIONS[method])
    return {f.key: f.key in shown for f in METHOD_FIELDS}


def defaults() -> dict[str, Any]:
    return {f.key: f.default for f in FIELDS}


STARTER = "demo.yaml"  # in assets/: the page's starting form (demo model, identity set, a LoRA that fits a CPU)


def starter_config(assets: Path) -> RunConfig | None:
    """The bundled starting config, or None where it (or the demo model it names) is not there."""
    path = assets / STARTER
    if not path.is_file():
        return None
    config = load_config(path)
    return config if Path(config.model.name_or_path).is_dir() else None


def _to_widget(field: FormField, value: Any) -> Any:
    if field.key == "method.bits":
        return value or 0
    if field.key == "method.target_modules" and isinstance(value, list):
        return ", ".join(value)
    if value is None and field.optional and field.kind == "integer":
        return 0
    return value


def _from_widget(field: FormField, value: Any) -> Any:
    """Widget value -> config value. Numbers arrive from gr.Number/gr.Slider as int or float."""
    if field.key == "method.bits":
        return int(value) or None
    if field.key == "method.target_modules":
        names = [n.strip() for n in str(value or "").split(",") if n.strip()]
        return names[0] if len(names) == 1 and names[0] == "all-linear" else names
    kind = field.kind
    if value is None or value == "" or (field.optional and kind == "integer" and not value):
        return None
    if kind == "integer" or (kind == "slider" and float(field.slider[2]).is_integer()):
        return int(round(float(value)))
    if kind in ("number", "slider"):
        return float(value)
    return value


def to_raw(values: dict[str, Any], *, model: str, data_path: str, data_format: str,
           method: str, output_dir: str) -> dict[str, Any]:
    """Widget values -> the plain dict that parse_config validates (only the chosen method's options)."""
    raw: dict[str, Any] = {
        "model": {"name_or_path": (model or "").strip()},
        "method": method_raw(values, method),
        "data": {"path": data_path or "", "format": data_format or "auto"},
        "train": {},
        "output_dir": output_dir,
    }
    for field in FIELDS:
        if field.key == STOP_BY or field.key.startswith("method."):
            continue
        value = _from_widget(field, values.get(field.key, field.default))
        if value is None and field.key in ("train.epochs", "train.learning_rate"):
            continue  # left blank: the schema's default applies
        section, name = field.key.split(".", 1)
        raw[section][name] = value
    if values.get(STOP_BY, "epochs") == "epochs":
        raw["train"]["max_steps"] = None
    elif not raw["train"].get("max_steps"):
        raise ConfigError(["train.max_steps must be at least 1 when training for a number of steps."], "form")
    return raw


def method_raw(values: dict[str, Any], method: str) -> dict[str, Any]:
    """The `method` section from widget values: the name and the options the method shows (others keep their
    defaults); qlora's bits are written out (4 or 8), so the YAML says what the run loads."""
    raw: dict[str, Any] = {"name": method}
    for key in METHOD_OPTIONS.get(method, ()):
        field = BY_KEY[key]
        raw[field.name] = _from_widget(field, values.get(key, field.default))
    if method == "qlora":
        raw["bits"] = bits_for(method, raw.get("bits"))
    if method == "prompt" and not raw.get("prompt_tuning_init_text"):
        raw.pop("prompt_tuning_init_text", None)
    return raw


def method_config(values: dict[str, Any], method: str) -> MethodConfig:
    """The validated method section of the form alone (what the trainable count needs); ConfigError otherwise."""
    try:
        return MethodConfig.model_validate(method_raw(values, method))
    except ValidationError as error:
        raise ConfigError([str(e["msg"]) for e in error.errors()], "form") from None


def to_config(values: dict[str, Any], *, model: str, data_path: str, data_format: str = "auto",
              method: str = "lora", output_dir: str) -> RunConfig:
    """Widget values -> a validated RunConfig; raises engine.config.ConfigError with every issue."""
    raw = to_raw(values, model=model, data_path=data_path, data_format=data_format, method=method,
                 output_dir=output_dir)
    return parse_config(raw, base_dir=Path(output_dir).parent, source="form")


def from_config(config: RunConfig) -> dict[str, Any]:
    """RunConfig -> widget values (for loading a saved YAML back into the form)."""
    values: dict[str, Any] = {}
    for field in FIELDS:
        if field.key == STOP_BY:
            values[STOP_BY] = "steps" if config.train.max_steps else "epochs"
            continue
        section, name = field.key.split(".", 1)
        values[field.key] = _to_widget(field, getattr(getattr(config, section), name))
    values["method.bits"] = config.method.effective_bits or 0  # qlora's default 4 shows as 4-bit
    return values


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
