"""RunConfig: the one typed schema of a run, from the web form to the engine and back to disk.

Plain Python (pydantic, yaml): the web UI imports this module, so it must never import torch.
Field names follow upstream: peft for method options, transformers where no contract key exists.
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_serializer,
    field_validator,
)

from engine import config_migrate as migrate
from engine import datapaths
from engine.config_best import BestOptions
from engine.config_distributed import DistributedOptions, distributed_problems
from engine.config_kernels import KernelOptions, kernel_problems
from engine.config_read import ConfigError as ConfigError
from engine.config_read import read_yaml, refuse_other_job, validated, without_problems
from engine.config_stage import StageOptions, StartOptions, stage_problems
from engine.config_trackers import TrackerOptions, tracker_problems
from engine.sentences import said

MethodName = Literal["lora", "dora", "qlora", "prefix", "prompt", "ptuning", "ia3", "full", "freeze"]
DataFormat = Literal["auto", "alpaca", "sharegpt", "openai", "prompt_completion", "text"]
Overlength = Literal["truncate", "drop"]
Mix = Literal["concat", "interleave"]
Reasoning = Literal["keep", "drop"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]
Optimizer = Literal["adamw_torch", "adamw_8bit", "paged_adamw_8bit", "sgd"]
Packing = Literal["auto", "on", "off"]
PromptInit = Literal["random", "text"]
PtuningEncoder = Literal["MLP", "LSTM"]

METHOD_NAMES: tuple[str, ...] = get_args(MethodName)
# Method facts, read by the engine, the form, export's model card and the page: one place each.
LORA_FAMILY = ("lora", "dora", "qlora")
PROMPT_LEARNING = ("prefix", "prompt", "ptuning")  # virtual tokens: cannot be merged into the weights
ADAPTER_METHODS = LORA_FAMILY + PROMPT_LEARNING + ("ia3",)  # write RUN/adapter/; the others write RUN/model/
MERGEABLE = LORA_FAMILY + ("ia3",)
METHOD_TITLES = {
    "lora": "LoRA", "dora": "DoRA", "qlora": "QLoRA", "ia3": "IA3", "prefix": "prefix tuning",
    "prompt": "prompt tuning", "ptuning": "P-tuning", "full": "full fine-tuning", "freeze": "freeze-tuning",
}  # fmt: skip
_LORA_OPTIONS = ("r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "bits")
# The MethodConfig fields each method reads (the form shows exactly these; the others keep their defaults).
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "lora": _LORA_OPTIONS,
    "dora": _LORA_OPTIONS,
    "qlora": _LORA_OPTIONS + ("bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype"),
    "prefix": ("num_virtual_tokens", "prefix_projection", "encoder_hidden_size"),
    "prompt": ("num_virtual_tokens", "prompt_tuning_init", "prompt_tuning_init_text"),
    "ptuning": ("num_virtual_tokens", "encoder_reparameterization_type", "encoder_hidden_size"),
    "ia3": ("target_modules",),
    "full": (),
    "freeze": ("freeze_trainable_layers",),
}
PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a {{name}} of data.replace (engine/data/placeholders.py)
DATA_EXTENSIONS = datapaths.DATA_EXTENSIONS  # dataset files the engine reads
EXPORT_DTYPES = ("float16", "bfloat16", "float32")
VERSIONED_PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # inf, nan: no setting


class ModelConfig(_Section, StartOptions):
    name_or_path: str = Field(description="Hugging Face hub id or a local model folder.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the model. Only for models you trust.")
    dtype: DType = Field("auto", description="Weights dtype: auto is bfloat16 on GPUs that support it, else float32.")
    revision: str | None = Field(None, description="Hub branch, tag or commit.")


class MethodConfig(_Section):
    """Method name plus the options of every method, named as peft names them."""

    name: MethodName = Field("lora", description="Fine-tuning method.")
    # LoRA family
    r: int = Field(8, ge=1, description="LoRA rank: size of the low-rank update.")
    lora_alpha: float = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(
        0.0, ge=0, lt=1,
        description="Dropout on the LoRA input (0 is fastest: on the CPU a mask costs about half the layer's matmul).",
    )
    target_modules: str | list[str] = Field(
        "all-linear", description="Layers to adapt: 'all-linear' or a list of module names such as q_proj."
    )
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA: scale = alpha / sqrt(r).")
    # quantization (qlora; 8-bit also allowed for lora/dora)
    bits: Literal[4, 8] | None = Field(None, description="Load the base in 4 or 8 bits (qlora defaults to 4).")
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    bnb_4bit_use_double_quant: bool = Field(True, description="Quantize the quantization constants too.")
    bnb_4bit_compute_dtype: DType = Field("auto", description="Dtype of the 4-bit matmuls: auto follows the model.")
    # prompt learning
    num_virtual_tokens: int = Field(20, ge=1, description="Number of trainable virtual tokens.")
    prefix_projection: bool = Field(False, description="Prefix tuning: reparametrise the prefix through an MLP.")
    encoder_hidden_size: int = Field(128, ge=1, description="Hidden size of the prefix/P-tuning encoder.")
    prompt_tuning_init: PromptInit = Field("random", description="Prompt tuning: random or text initialisation.")
    prompt_tuning_init_text: str | None = Field(None, description="Text whose tokens initialise the prompt.")
    encoder_reparameterization_type: PtuningEncoder = Field("MLP", description="P-tuning prompt encoder.")
    # freeze
    freeze_trainable_layers: int = Field(2, ge=1, description="Freeze: train only the last N decoder layers.")

    @property
    def effective_bits(self) -> int | None:
        """Quantization bits actually used: qlora means 4 unless told 8."""
        if self.name == "qlora":
            return self.bits or 4
        return self.bits


MAX_FRACTION = 10


class DataSource(_Section):
    """One dataset of a list data.path with settings of its own; a setting left out is data's."""

    path: str = Field(description="Dataset file, dataset folder or hub dataset id.")
    format: DataFormat | None = Field(None, description="This dataset's format (default: data.format).")
    columns: dict[str, str] | None = Field(None, description="This dataset's column map (default: data.columns).")
    split: str | None = Field(None, description="This dataset's split (default: data.split).")
    fraction: float = Field(1.0, gt=0, le=MAX_FRACTION, description=(
        "Share of this dataset's rows to use, drawn with train.seed: 0.5 takes half of them, 2 every row twice, "
        "1.5 every row once and a drawn half once more."))


def _kind(value: Any) -> str:
    """The union member a data.path value (or list item) is, so that a mistake is reported against that one."""
    if isinstance(value, (list, tuple)):
        return "a-list"
    return "a-mapping" if isinstance(value, (dict, DataSource)) else "a-string"


DataItem = Annotated[Annotated[str, Tag("a-string")] | Annotated[DataSource, Tag("a-mapping")], Discriminator(
    _kind, custom_error_type="data_item", custom_error_message="write each item as a path or as a mapping "
    "{path, format, columns, split, fraction}")]
DataPath = Annotated[Annotated[str, Tag("a-string")] | Annotated[list[DataItem], Tag("a-list")], Discriminator(
    _kind, custom_error_type="data_path", custom_error_message="write one dataset as a path, or several as a list")]


class DataConfig(_Section):
    path: DataPath = Field(description=(
        "Dataset file (.json, .jsonl, .csv, .parquet, .txt), dataset folder (save_to_disk, or data files) or hub "
        "dataset id; or a list of them, where an item may be {path, format, columns, split, fraction}."))
    format: DataFormat = Field("auto", description="Dataset format; auto detects it from the columns.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Map standard column names to the file's, e.g. {prompt: question, response: answer}.",
    )
    val_size: float = Field(0.0, ge=0, lt=1, description="Fraction of rows held out for validation.")
    overlength: Overlength = Field("truncate", description="Rows longer than cutoff_len: truncate or drop.")
    max_samples: int | None = Field(None, ge=1, description="Use only the first N rows (of each dataset).")
    mix: Mix = Field("concat", description=(
        "Several datasets: concat puts one after another; interleave spreads each over the whole in proportion "
        "to its size (drawn with train.seed)."))
    split: str = Field("train", description="The split read from a dataset folder or a hub dataset.")
    replace: dict[str, str] = Field(
        default_factory=dict,
        description="Text for each {{name}} placeholder in the data, e.g. {name: Aria, author: Ada}: training fills "
        "them in every row and refuses a row that holds one left unfilled.",
    )
    reasoning: Reasoning = Field(
        "keep", description="Reasoning in assistant replies (<think> blocks, reasoning_content): keep trains it where "
        "the chat template renders it; drop removes it before templating.")

    @field_validator("replace", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        """YAML reads `year: 2025` as a number; a placeholder's value is the text the user wrote."""
        if not isinstance(value, dict):
            return value
        return {key: str(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else item
                for key, item in value.items()}


    @field_serializer("path")
    def _compact_path(self, path: Any) -> Any:
        """A list item with settings of its own is written with only those settings."""
        if isinstance(path, str):
            return path
        return [item if isinstance(item, str) else {"path": item.path, **item.model_dump(
            mode="json", exclude_defaults=True, exclude={"path"})} for item in path]

    def sources(self) -> list[DataSource]:
        """Every dataset of data.path, its format, columns and split filled in from data's where it has none."""
        items = [self.path] if isinstance(self.path, str) else self.path
        sources = []
        for item in items:
            own = DataSource(path=item) if isinstance(item, str) else item
            sources.append(own.model_copy(update={
                "format": own.format or self.format, "split": own.split or self.split,
                "columns": self.columns if own.columns is None else own.columns}))
        return sources

    def for_source(self, source: DataSource) -> DataConfig:
        """This config narrowed to one dataset (what reading, normalising and inspecting one dataset take)."""
        return self.model_copy(update={"path": source.path, "format": source.format, "columns": source.columns,
                                       "split": source.split})

    def with_paths(self, change: Any) -> DataConfig:
        """A copy with every dataset path passed through `change` (str -> str), the list's shape kept."""
        if isinstance(self.path, str):
            return self.model_copy(update={"path": change(self.path)})
        items = [change(item) if isinstance(item, str) else item.model_copy(update={"path": change(item.path)})
                 for item in self.path]
        return self.model_copy(update={"path": items})

    @property
    def name(self) -> str:
        """How logs and the page name the data: `a.json`, or `a.json + b.jsonl` for several."""
        return " + ".join(datapaths.display_name(source.path) for source in self.sources())


class TrainConfig(_Section, StageOptions, TrackerOptions, KernelOptions, BestOptions):
    """How to train; the stage, report_to, kernels and the kept checkpoint come from their own modules' options."""

    epochs: float = Field(3.0, gt=0, description="Passes over the data (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Total optimizer steps; overrides epochs.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    batch_size: int = Field(4, ge=1, description="Examples per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Steps whose gradients add up per update.")
    cutoff_len: int = Field(512, ge=8, description="Maximum tokens per example.")
    lr_scheduler_type: Scheduler = Field("cosine", description="Learning-rate schedule.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 disables).")
    optim: Optimizer = Field("adamw_torch", description="Optimizer; 8-bit and paged ones come from bitsandbytes.")
    logging_steps: int = Field(1, ge=1, description="Write metrics every N steps.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (default: once per epoch).")
    save_steps: int = Field(100, ge=1, description="Write a resumable checkpoint every N steps.")
    save_total_limit: int = Field(2, ge=1, description="Keep only the newest N checkpoints.")
    seed: int = Field(42, description="Random seed for data order and initialisation.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    packing: Packing = Field("auto", description="Pack examples into padding-free rows (auto: where it costs less).")
    pack_len: int | None = Field(None, ge=8, description="Tokens per packed row (default: cutoff_len).")
    resume: bool = Field(False, description="Continue from the newest checkpoint in output_dir.")

    @field_validator("packing", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        """YAML 1.1 reads a bare `on`/`off` as true/false; take them as what the user wrote."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class RunConfig(_Section, DistributedOptions):
    """A run; `devices` and `distributed` come from engine/config_distributed.py."""

    model: ModelConfig
    method: MethodConfig = Field(default_factory=MethodConfig)
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    output_dir: str = Field(description="The run folder.")
    versions: dict[str, str] = Field(default_factory=dict, description="Package versions (written by the engine).")

    def problems(self) -> list[str]:
        """Every semantic problem at once, each as one sentence that says what to change."""
        issues: list[str] = []
        m, t = self.method, self.train
        if m.name in ("full", "freeze") and m.bits:
            issues.append(said("engine.config.bits_full", method=m.name))
        if m.name in PROMPT_LEARNING and m.bits:
            issues.append(said("engine.config.bits_prompt", method=m.name))
        if m.name == "prompt" and m.prompt_tuning_init == "text" and not m.prompt_tuning_init_text:
            issues.append("method.prompt_tuning_init_text must be set when method.prompt_tuning_init is 'text'.")
        if isinstance(m.target_modules, list) and not m.target_modules:
            issues.append(said("engine.config.no_targets"))
        if t.eval_steps and not self.data.val_size:
            issues.append(said("engine.config.eval_without_val"))
        if t.resume and not Path(self.output_dir).exists():
            issues.append(said("engine.config.nothing_to_resume", output_dir=self.output_dir))
        for name in self.data.replace:
            if not PLACEHOLDER_NAME.fullmatch(name):
                issues.append(f"data.replace names {name!r}, which is no placeholder name: use letters, digits and _ "
                              "as the data writes them between double braces, like {{name}}.")
        issues += stage_problems(t, m.name, [source.format or "auto" for source in self.data.sources()])
        issues += tracker_problems(t.report_to) + kernel_problems(t.kernels, t.stage)
        issues += t.best_problems(bool(self.data.val_size))
        issues += distributed_problems(self.devices, self.distributed, m.name)
        issues += datapaths.problems([source.path for source in self.data.sources()],
                                     listed=not isinstance(self.data.path, str))
        return issues

    def to_yaml(self) -> str:
        """The run's YAML: model, method, data, train, output_dir first, where a reader (and the page's preview,
        which shows its first lines) looks; the devices and the distribution, rarely changed, after them."""
        raw = self.model_dump(mode="json")
        late = {key: raw.pop(key) for key in DistributedOptions.model_fields}
        return yaml.safe_dump(migrate.CONFIG.stamp(raw | late), sort_keys=False, allow_unicode=True)

    def with_versions(self) -> RunConfig:
        versions = {"python": platform.python_version()}
        for package in VERSIONED_PACKAGES:
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = "not installed"
        return self.model_copy(update={"versions": versions})


class ExportConfig(_Section):
    """One export job (`EXPORTS/NAME/config.yaml`): which run, in which dtype, in shards of which size."""

    run_dir: str = Field(description="The finished run folder to export.")
    dtype: Literal["float16", "bfloat16", "float32"] | None = Field(
        None, description="Weights dtype of the export (default: float32 on the CPU, the GPU's 16-bit type there).")
    max_shard_size: str = Field("2GB", description="Largest safetensors shard, e.g. 2GB or 500MB.")
    zip: bool = Field(True, description="Also write the export and the adapter as zip files for download.")

    @field_validator("max_shard_size")
    @classmethod
    def _shard_size(cls, value: str) -> str:
        if (problem := shard_size_problem(value)) is not None:
            raise ValueError(problem)
        return value

    def to_yaml(self) -> str:
        return yaml.safe_dump(migrate.CONFIG.stamp(self.model_dump(mode="json")), sort_keys=False, allow_unicode=True)


SHARD_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*[TGMK]B\s*", re.IGNORECASE)  # what safetensors' sharding parses


def shard_size_problem(value: str) -> str | None:
    """Why `value` is no shard size (a number above 0 and TB, GB, MB or KB, as 2GB or 500MB), or None."""
    if SHARD_SIZE.fullmatch(value) and float(value.strip()[:-2]) > 0:
        return None
    return "no shard size: write a number above 0 and a unit, as 2GB or 500MB (TB, GB, MB or KB)"


def parse_config(raw: dict[str, Any], base_dir: Path | None = None, source: str = "config") -> RunConfig:
    """Build a RunConfig from a plain dict of any config schema version (engine.config_migrate brings it to
    today's); relative data.path/output_dir resolve against base_dir.

    Raises ConfigError listing every problem (unknown keys, bad types, semantic problems) at once.
    """
    config = validated(RunConfig, raw, source, "model, method, data, train, output_dir")
    return without_problems(resolve_paths(config, base_dir) if base_dir is not None else config, source)


def resolve_paths(config: RunConfig, base_dir: Path) -> RunConfig:
    """Relative data.path entries and output_dir are relative to base_dir (the config file's folder), except a
    data.path entry that names nothing there and has the shape of a hub dataset id; so is a
    relative model.name_or_path that names a folder there (otherwise it is a hub id, left as it is)."""
    output_dir = Path(config.output_dir).expanduser()
    data = config.data.with_paths(lambda path: datapaths.resolve(path, base_dir))
    out = os.path.normpath(base_dir / output_dir)  # no `..` in the folder messages name (links are kept)
    model = config.model
    local_model = base_dir / config.model.name_or_path
    if not Path(config.model.name_or_path).is_absolute() and (local_model / "config.json").is_file():
        model = model.model_copy(update={"name_or_path": str(local_model.resolve())})
    return config.model_copy(update={"data": data, "output_dir": out, "model": model})


def load_config(path: str | Path, *, writes: bool = True, output_dir: str | Path | None = None) -> RunConfig:
    """Read and validate a YAML config file; relative paths are relative to the file's folder. A command that only
    reads the config (estimate, plan: writes=False) does not need its output_dir, so a missing one is left unset;
    `output_dir` is the run folder of a config that names none (train: WORKSPACE/runs/NAME)."""
    path = Path(path)
    raw = read_yaml(path)
    refuse_other_job(raw, str(path))
    if (output_dir is not None or not writes) and isinstance(raw, dict):
        raw = {"output_dir": str(output_dir or ""), **raw}
    return parse_config(raw, base_dir=path.resolve().parent, source=str(path))


def field_help(section: type[BaseModel], name: str) -> str:
    """The one-line help text of a config field (shown next to its widget)."""
    return section.model_fields[name].description or ""


def choices(section: type[BaseModel], name: str) -> tuple[Any, ...]:
    """The allowed values of a Literal field, so the UI lists exactly what validation accepts."""
    values: list[Any] = []
    for arg in get_args(section.model_fields[name].annotation):
        values.extend(get_args(arg) or ([] if arg is type(None) else [arg]))
    return tuple(values)
