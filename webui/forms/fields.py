"""The Train form's option widgets as typed objects, built once: each FormField names the schema field it edits
(`FormField(TrainConfig, "cutoff_len")`), and its kind, choices, bounds and help come from engine.config, so the
form cannot drift from the schema. The two radios that do not map one-to-one onto a schema field (stop by
epochs or steps; the quantization bits, whose 16-bit choice is the schema's None) are Choices of their own.

Code refers to the objects (`forms.CUTOFF_LEN`); the dotted `key` ("train.cutoff_len") is derived from them and
used only for translations (`field.KEY`, `help.KEY`) and the widget's elem_id.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.config import METHOD_OPTIONS as ENGINE_METHOD_OPTIONS
from engine.config import DataConfig, MethodConfig, ModelConfig, RunConfig, TrainConfig, choices, field_help
from engine.config_distributed import DistributedConfig, DistributedOptions
from engine.config_stage import STAGE_OPTIONS as ENGINE_STAGE_OPTIONS
from engine.sampling import SamplingConfig

# Each schema section a FormField may edit, and its key's stem (a RunConfig attribute, except the Chat tab's
# sampling settings: webui/forms/sampling.py); "" for RunConfig's own fields (devices).
SECTIONS: dict[type[BaseModel], str] = {ModelConfig: "model", MethodConfig: "method", DataConfig: "data",
                                        TrainConfig: "train", SamplingConfig: "sampling",
                                        DistributedConfig: "distributed", DistributedOptions: ""}
Kind = Literal["number", "integer", "slider", "checkbox", "dropdown", "multiselect", "text"]


@dataclass(frozen=True)
class FormField:
    """One widget of the form: the schema field it edits and, for a slider, its (minimum, maximum, step)."""

    section: type[BaseModel]
    name: str
    slider: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.section not in SECTIONS or self.name not in self.section.model_fields:
            raise ValueError(f"{self.section.__name__} has no field {self.name}")

    @property
    def key(self) -> str:
        """"train.cutoff_len": the translation keys' and the elem_id's stem (and the YAML path)."""
        return f"{SECTIONS[self.section]}.{self.name}" if SECTIONS[self.section] else self.name

    @property
    def info(self) -> FieldInfo:
        return self.section.model_fields[self.name]

    @property
    def help(self) -> str:
        return field_help(self.section, self.name)

    @property
    def optional(self) -> bool:
        """A value the schema allows to be None; a number's widget shows 0 for None ("off / default")."""
        return type(None) in typing.get_args(self.info.annotation)

    @property
    def is_list(self) -> bool:
        """A list of names, edited as comma-separated text."""
        annotation = self.info.annotation
        return any(typing.get_origin(arg) is list for arg in (annotation, *typing.get_args(annotation)))

    @property
    def default(self) -> Any:
        value = self.info.get_default(call_default_factory=True)
        return 0 if value is None and self.kind in ("integer", "number") else value

    @property
    def choices(self) -> tuple[Any, ...]:
        annotation = self.info.annotation
        literal = typing.get_origin(annotation) is Literal or any(
            typing.get_origin(a) is Literal for a in typing.get_args(annotation))
        return choices(self.section, self.name) if literal else ()

    @property
    def minimum(self) -> float | None:
        if self.optional and self.kind in ("integer", "number"):
            return 0
        for meta in self.info.metadata:
            for attr in ("ge", "gt"):
                if getattr(meta, attr, None) is not None:
                    return getattr(meta, attr)
        return None

    @property
    def kind(self) -> Kind:
        if self.slider:
            return "slider"
        annotation = self.info.annotation
        base = {a for a in typing.get_args(annotation) if a is not type(None)} or {annotation}
        if base == {bool}:
            return "checkbox"
        if self.choices:
            return "multiselect" if self.is_list else "dropdown"  # a list of names the schema lists (report_to)
        if base == {int}:
            return "integer"
        if base == {float}:
            return "number"
        return "text"

    def read(self, config: RunConfig) -> Any:
        """This field's value in `config`."""
        stem = SECTIONS[self.section]
        return getattr(getattr(config, stem) if stem else config, self.name)


@dataclass(frozen=True)
class Choice:
    """A radio of the form whose values are its own rather than a schema field's."""

    key: str  # translation keys' and elem_id's stem, as for FormField
    choices: tuple[Any, ...]
    default: Any
    help: str


Option = FormField | Choice  # any option widget of the form

STOP_BY = Choice("ui.stop_by", ("epochs", "steps"), "epochs",
                 "Stop after a number of epochs or after a number of optimizer steps.")
BITS = Choice("method.bits", (0, 4, 8), 0, field_help(MethodConfig, "bits"))  # 0 = 16-bit; the schema says None
BITS_LABELS = {0: "16-bit", 8: "8-bit", 4: "4-bit"}

R = FormField(MethodConfig, "r", (1, 256, 1))
LORA_ALPHA = FormField(MethodConfig, "lora_alpha", (1, 512, 1))
LORA_DROPOUT = FormField(MethodConfig, "lora_dropout", (0, 0.5, 0.01))
TARGET_MODULES = FormField(MethodConfig, "target_modules")
USE_RSLORA = FormField(MethodConfig, "use_rslora")
BNB_4BIT_QUANT_TYPE = FormField(MethodConfig, "bnb_4bit_quant_type")
BNB_4BIT_USE_DOUBLE_QUANT = FormField(MethodConfig, "bnb_4bit_use_double_quant")
BNB_4BIT_COMPUTE_DTYPE = FormField(MethodConfig, "bnb_4bit_compute_dtype")
NUM_VIRTUAL_TOKENS = FormField(MethodConfig, "num_virtual_tokens", (1, 256, 1))
PREFIX_PROJECTION = FormField(MethodConfig, "prefix_projection")
ENCODER_HIDDEN_SIZE = FormField(MethodConfig, "encoder_hidden_size")
PROMPT_TUNING_INIT = FormField(MethodConfig, "prompt_tuning_init")
PROMPT_TUNING_INIT_TEXT = FormField(MethodConfig, "prompt_tuning_init_text")
ENCODER_REPARAMETERIZATION_TYPE = FormField(MethodConfig, "encoder_reparameterization_type")
FREEZE_TRAINABLE_LAYERS = FormField(MethodConfig, "freeze_trainable_layers")

# The training stage (Method section) with its options, and the finished run a run starts from (model.adapter).
STAGE = FormField(TrainConfig, "stage")
ADAPTER = FormField(ModelConfig, "adapter")  # a dropdown of finished runs, "" for none (webui/tabs/train/panels.py)
BETA = FormField(TrainConfig, "beta")
LOSS_TYPE = FormField(TrainConfig, "loss_type")
LABEL_SMOOTHING = FormField(TrainConfig, "label_smoothing")
RPO_ALPHA = FormField(TrainConfig, "rpo_alpha")
SIMPO_GAMMA = FormField(TrainConfig, "simpo_gamma")
DESIRABLE_WEIGHT = FormField(TrainConfig, "desirable_weight")
UNDESIRABLE_WEIGHT = FormField(TrainConfig, "undesirable_weight")
MAX_PROMPT_LENGTH = FormField(TrainConfig, "max_prompt_length")

EPOCHS = FormField(TrainConfig, "epochs")
MAX_STEPS = FormField(TrainConfig, "max_steps")
LEARNING_RATE = FormField(TrainConfig, "learning_rate")
BATCH_SIZE = FormField(TrainConfig, "batch_size")
GRADIENT_ACCUMULATION_STEPS = FormField(TrainConfig, "gradient_accumulation_steps")
CUTOFF_LEN = FormField(TrainConfig, "cutoff_len", (8, 8192, 8))
WARMUP_RATIO = FormField(TrainConfig, "warmup_ratio", (0, 0.5, 0.01))
LR_SCHEDULER_TYPE = FormField(TrainConfig, "lr_scheduler_type")
VAL_SIZE = FormField(DataConfig, "val_size", (0, 0.5, 0.01))
SAVE_STEPS = FormField(TrainConfig, "save_steps")
SEED = FormField(TrainConfig, "seed")

OVERLENGTH = FormField(DataConfig, "overlength")
REASONING = FormField(DataConfig, "reasoning")
MAX_SAMPLES = FormField(DataConfig, "max_samples")
OPTIM = FormField(TrainConfig, "optim")
WEIGHT_DECAY = FormField(TrainConfig, "weight_decay")
MAX_GRAD_NORM = FormField(TrainConfig, "max_grad_norm")
LOGGING_STEPS = FormField(TrainConfig, "logging_steps")
EVAL_STEPS = FormField(TrainConfig, "eval_steps")
METRIC_FOR_BEST = FormField(TrainConfig, "metric_for_best")
EARLY_STOPPING_PATIENCE = FormField(TrainConfig, "early_stopping_patience")
SAVE_TOTAL_LIMIT = FormField(TrainConfig, "save_total_limit")
GRADIENT_CHECKPOINTING = FormField(TrainConfig, "gradient_checkpointing")
PACKING = FormField(TrainConfig, "packing")
REPORT_TO = FormField(TrainConfig, "report_to")
KERNELS = FormField(TrainConfig, "kernels")
DTYPE = FormField(ModelConfig, "dtype")
TRUST_REMOTE_CODE = FormField(ModelConfig, "trust_remote_code")
# data.replace, {placeholder: text}: a hidden widget the placeholder fields edit (webui/tabs/train/placeholders.py)
REPLACE = FormField(DataConfig, "replace")
# data.columns of every chosen dataset, {dataset: {standard: column}}: a hidden widget the Columns group's dropdowns
# edit (webui/components/columns.py); webui.forms.columns writes it into data.columns, or each dataset's own
COLUMNS = FormField(DataConfig, "columns")

# The Devices panel (webui/tabs/train/devices.py): on which devices, in how many processes on how many machines.
DEVICES = FormField(DistributedOptions, "devices")
STRATEGY = FormField(DistributedConfig, "strategy")
NPROC_PER_NODE = FormField(DistributedConfig, "nproc_per_node")
NNODES = FormField(DistributedConfig, "nnodes")
NODE_RANK = FormField(DistributedConfig, "node_rank")
MASTER_ADDR = FormField(DistributedConfig, "master_addr")
MASTER_PORT = FormField(DistributedConfig, "master_port")
FSDP_OFFLOAD = FormField(DistributedConfig, "fsdp_offload")
ZERO_STAGE = FormField(DistributedConfig, "zero_stage")
ZERO_OFFLOAD = FormField(DistributedConfig, "zero_offload")

METHOD_FIELDS = (R, LORA_ALPHA, LORA_DROPOUT, TARGET_MODULES, USE_RSLORA, BNB_4BIT_QUANT_TYPE,
                 BNB_4BIT_USE_DOUBLE_QUANT, BNB_4BIT_COMPUTE_DTYPE, NUM_VIRTUAL_TOKENS, PREFIX_PROJECTION,
                 ENCODER_HIDDEN_SIZE, PROMPT_TUNING_INIT, PROMPT_TUNING_INIT_TEXT, ENCODER_REPARAMETERIZATION_TYPE,
                 FREEZE_TRAINABLE_LAYERS)
TRAIN_FIELDS = (EPOCHS, MAX_STEPS, LEARNING_RATE, BATCH_SIZE, GRADIENT_ACCUMULATION_STEPS, CUTOFF_LEN, WARMUP_RATIO,
                LR_SCHEDULER_TYPE, VAL_SIZE, SAVE_STEPS, SEED)
ADVANCED_FIELDS = (OVERLENGTH, REASONING, MAX_SAMPLES, OPTIM, WEIGHT_DECAY, MAX_GRAD_NORM, LOGGING_STEPS, EVAL_STEPS,
                   METRIC_FOR_BEST, EARLY_STOPPING_PATIENCE, SAVE_TOTAL_LIMIT, GRADIENT_CHECKPOINTING, PACKING, KERNELS,
                   DTYPE, TRUST_REMOTE_CODE, REPORT_TO)
STAGE_OPTION_FIELDS = (BETA, LOSS_TYPE, LABEL_SMOOTHING, RPO_ALPHA, SIMPO_GAMMA, DESIRABLE_WEIGHT,
                       UNDESIRABLE_WEIGHT, MAX_PROMPT_LENGTH)
STAGE_FIELDS = (STAGE, ADAPTER, *STAGE_OPTION_FIELDS)  # the stage part of the Method section
DEVICE_FIELDS = (DEVICES, STRATEGY, NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT, FSDP_OFFLOAD,
                 ZERO_STAGE, ZERO_OFFLOAD)
FIELDS: tuple[FormField, ...] = METHOD_FIELDS + TRAIN_FIELDS + ADVANCED_FIELDS + STAGE_FIELDS + DEVICE_FIELDS
METHOD_WIDGETS: tuple[Option, ...] = (*METHOD_FIELDS, BITS)  # everything the method panel holds
# Every option widget, in the order the Train tab passes their values to handlers (after model, dataset, format
# and method): the one ordered tuple that forms.from_widgets zips with, strictly.
OPTIONS: tuple[Option, ...] = (STOP_BY, BITS, *FIELDS, REPLACE, COLUMNS)

_BNB = (BNB_4BIT_QUANT_TYPE, BNB_4BIT_USE_DOUBLE_QUANT, BNB_4BIT_COMPUTE_DTYPE)
_BY_NAME: dict[str, Option] = {**{f.name: f for f in METHOD_FIELDS}, "bits": BITS}
# Which options each method shows: engine.config.METHOD_OPTIONS (the fields each method reads), as widgets;
# every other method option keeps its default.
METHOD_OPTIONS: dict[str, tuple[Option, ...]] = {
    method: tuple(_BY_NAME[name] for name in names) for method, names in ENGINE_METHOD_OPTIONS.items()}

_STAGE_BY_NAME: dict[str, FormField] = {f.name: f for f in STAGE_OPTION_FIELDS}
# Which options each stage shows: engine.config_stage.STAGE_OPTIONS (the options each stage reads), as widgets.
STAGE_OPTIONS: dict[str, tuple[FormField, ...]] = {
    stage: tuple(_STAGE_BY_NAME[name] for name in names) for stage, names in ENGINE_STAGE_OPTIONS.items()}

# How the method options are laid out: rows that never show more than four options for any method, so no
# label is squeezed at the page's width (tests/unit/test_webui_forms.py checks every option has exactly one place).
METHOD_ROWS: tuple[tuple[Option, ...], ...] = (
    (R, LORA_ALPHA, LORA_DROPOUT, TARGET_MODULES),
    (USE_RSLORA, BITS, FREEZE_TRAINABLE_LAYERS),
    _BNB,
    (NUM_VIRTUAL_TOKENS, PREFIX_PROJECTION, PROMPT_TUNING_INIT, PROMPT_TUNING_INIT_TEXT,
     ENCODER_REPARAMETERIZATION_TYPE, ENCODER_HIDDEN_SIZE),
)

# The method options that change the trainable count (the page recounts when one changes).
COUNT_FIELDS = (R, TARGET_MODULES, NUM_VIRTUAL_TOKENS, PREFIX_PROJECTION, ENCODER_HIDDEN_SIZE,
                ENCODER_REPARAMETERIZATION_TYPE, FREEZE_TRAINABLE_LAYERS)
