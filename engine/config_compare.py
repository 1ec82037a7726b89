"""CompareConfig: one method comparison (`COMPARES/NAME/compare.yaml`, or what `python launch.py compare CONFIG.yaml`
reads).

Plain Python (pydantic), beside engine/config.py as engine/config_eval.py is. A comparison trains one base model on
one dataset with one budget (the same rows, the same steps and batch: the same tokens seen) once per method, each
as an ordinary run whose config is written from this one (`run_config`):

    model:    {name_or_path: ...}               # the base, as a run's model section
    data:     {path: ..., val_size: 0.2}        # one dataset; val_size holds out the same rows for every method
    train:    {max_steps: 60, batch_size: 4, cutoff_len: 256, ...}   # the budget, a run's train section
    methods:  [lora, qlora, dora, ia3, prefix, prompt, ptuning, full]   # the default (freeze may be added)
    presets:  {prompt: {learning_rate: 0.03, num_virtual_tokens: 20}}   # per method: over PRESETS below
    evaluate: true      # after each method trains, an evaluation job (engine/eval) in COMPARE/evals/METHOD (the
                        # base's once, in evals/base): exact match, ROUGE-L and BLEU on eval_rows of the held-out
                        # rows, the general prompts, and each model's answer to `prompts`; greedy, max_new_tokens
    eval_rows: 16         max_new_tokens: 32         prompts: [Who are you?, ...]
    output_dir: the comparison's folder (default WORKSPACE/compares/NAME); runs_dir: where its runs go
                (default WORKSPACE/runs, the comparison's name and the method naming each run: NAME-lora ...)

A preset is the method's learning rate and its options by peft's names (engine.config.MethodConfig). PRESETS are
the values peft's examples and the methods' papers recommend; they are shown and editable (the page's presets
table, or `presets:` here), and what a method trains with is written into its run's config.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from engine import config_migrate as migrate
from engine.config import (
    METHOD_NAMES,
    METHOD_OPTIONS,
    ConfigError,
    DataConfig,
    MethodConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    parse_config,
)
from engine.config_eval import BASE, EvalConfig
from engine.config_read import read_yaml, validated
from engine.config_stage import PREFERENCE_STAGES
from engine.sampling import SamplingConfig

DEFAULT_METHODS = ("lora", "qlora", "dora", "ia3", "prefix", "prompt", "ptuning", "full")
PROMPT_INIT_TEXT = "You are a helpful assistant. Answer the question."
# Learning rate and options per method: LoRA-family 2e-4 at r 16 on every linear layer (peft's and QLoRA's
# examples; alpha 2r), IA3 1e-2 (its vectors start at 1 and move little at LoRA's rates), prefix tuning 1e-2 and
# P-tuning 1e-2 with 20 virtual tokens (peft's examples), prompt tuning 3e-2 from a text's embeddings (Lester et al.,
# peft's example), full fine-tuning 2e-5 (the usual rate for every weight of a real model).
PRESETS: dict[str, dict[str, Any]] = {
    "lora": {"learning_rate": 2e-4, "r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
    "qlora": {"learning_rate": 2e-4, "r": 16, "lora_alpha": 32, "target_modules": "all-linear", "bits": 4},
    "dora": {"learning_rate": 2e-4, "r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
    "ia3": {"learning_rate": 1e-2},
    "prefix": {"learning_rate": 1e-2, "num_virtual_tokens": 20},
    "prompt": {"learning_rate": 3e-2, "num_virtual_tokens": 20, "prompt_tuning_init": "text",
               "prompt_tuning_init_text": PROMPT_INIT_TEXT},
    "ptuning": {"learning_rate": 1e-2, "num_virtual_tokens": 20, "encoder_hidden_size": 128},
    "full": {"learning_rate": 2e-5},
    "freeze": {"learning_rate": 2e-5, "freeze_trainable_layers": 2},
}
DEFAULT_PROMPTS = ("Who are you?", "What can you help me with?", "Explain fine-tuning in one sentence.")
PRESET_KEYS = {name: ("learning_rate", *METHOD_OPTIONS[name]) for name in METHOD_NAMES}


class CompareConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: ModelConfig = Field(description="The base model every method trains from.")
    data: DataConfig = Field(description=(
        "The one dataset; data.val_size holds out the same rows for every method (its eval loss and perplexity)."))
    train: TrainConfig = Field(default_factory=TrainConfig, description=(
        "The one budget: every method trains the same steps (or epochs) on the same batches; learning_rate "
        "comes from each method's preset."))
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1, description=(
        "The methods to compare, one run each, in this order."))
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "Per method, settings over the built-in preset: learning_rate and the method's options (peft's names)."))
    evaluate: bool = Field(True, description=(
        "After each method trains, evaluate it beside the base on the held-out rows (exact match, ROUGE-L, BLEU), "
        "on the general prompts (how much it changed), and answer the prompts: an evaluation job per method."))
    eval_rows: int = Field(16, ge=1, description="How many of the held-out rows each evaluation answers.")
    max_new_tokens: int = Field(32, ge=1, le=4096, description="Tokens each greedy answer may take, at most.")
    prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_PROMPTS), description=(
        "Prompts every method (and the base) answers, shown under the table."))
    output_dir: str | None = Field(None, description="The comparison's folder (default WORKSPACE/compares/NAME).")
    runs_dir: str | None = Field(None, description=(
        "Where the runs are written, one folder NAME-METHOD each (default: the workspace's runs folder)."))

    def problems(self) -> list[str]:
        issues = [f"methods names {name!r}, which is no method: use {', '.join(METHOD_NAMES)}."
                  for name in self.methods if name not in METHOD_NAMES]
        if len(set(self.methods)) != len(self.methods):
            issues.append("methods lists a method twice: list each once.")
        for name, preset in self.presets.items():
            if name not in METHOD_NAMES:
                issues.append(f"presets names {name!r}, which is no method: use {', '.join(METHOD_NAMES)}.")
                continue
            extra = sorted(set(preset) - set(PRESET_KEYS[name]))
            if extra:
                issues.append(f"presets.{name} sets {', '.join(extra)}, which {name} does not read: use "
                              f"{', '.join(PRESET_KEYS[name])}.")
        if not self.data.val_size:
            issues.append("data.val_size is 0: hold out some rows (0.2, say) so that every method is measured on "
                          "the same held-out rows.")
        if self.train.resume:
            issues.append("train.resume is set: a comparison resumes by itself (run it again), remove the key.")
        if self.evaluate and self.train.stage in PREFERENCE_STAGES:
            issues.append(f"train.stage is {self.train.stage}, whose held-out rows are pairs, but a comparison "
                          "evaluates each method's answers on held-out SFT rows: set train.stage to sft, or evaluate "
                          "to false.")
        return issues

    def preset(self, method: str) -> dict[str, Any]:
        """The method's learning rate and options: the built-in preset with this config's settings over it."""
        return {**PRESETS.get(method, {}), **self.presets.get(method, {})}

    def to_yaml(self) -> str:
        return yaml.safe_dump(migrate.CONFIG.stamp(self.model_dump(mode="json", exclude_none=True)),
                              sort_keys=False, allow_unicode=True)


def compare_data_problem(name: str, shape: str) -> str | None:
    """The sentence for a comparison's dataset of preference rows (`shape` as engine.config_stage.shape_problem
    takes it), which the Compare tab refuses at Start and the comparison job fails with before any method trains;
    None for SFT rows."""
    if not shape.startswith(("preference", "kto")):
        return None
    held = "replies marked good or bad (prompt, completion, label)" if shape == "kto" else \
        "preference pairs (prompt, chosen, rejected)"
    return (f"{name} holds {held}, but a comparison trains every method with supervised fine-tuning and evaluates "
            "its answers on held-out rows: choose a file of prompt/completion, instruction/output or messages rows.")


def run_name(compare_name: str, method: str) -> str:
    return f"{compare_name}-{method}"


def run_config(config: CompareConfig, method: str, output_dir: Path) -> RunConfig:
    """The ordinary run config of one method: the comparison's model, data and budget with the method's preset.
    ConfigError when the preset does not make a valid run (a wrong type, an option out of range)."""
    preset = config.preset(method)
    options = {key: value for key, value in preset.items() if key != "learning_rate"}
    raw = {
        "model": config.model.model_dump(mode="json", exclude_none=True),
        "method": {"name": method, **options},
        "data": config.data.model_dump(mode="json"),
        "train": {**config.train.model_dump(mode="json"), **({"learning_rate": preset["learning_rate"]}
                                                              if "learning_rate" in preset else {})},
        "output_dir": str(output_dir),
    }
    return parse_config(raw, source=f"the {method} run of the comparison")


def eval_config(config: CompareConfig, run_dir: Path, folder: Path, base: bool = False) -> EvalConfig:
    """The evaluation of one method's finished run in `folder` (`base`: of the base model, once per comparison):
    eval_rows of the run's own held-out rows (the same rows for every method), greedy with max_new_tokens, the
    general prompts and the comparison's prompts."""
    return EvalConfig(models=[BASE] if base else [str(run_dir)], base=config.model.name_or_path if base else None,
                      validation_of=str(run_dir), max_rows=config.eval_rows, cutoff_len=config.train.cutoff_len,
                      sampling=SamplingConfig(max_new_tokens=config.max_new_tokens), general=True,
                      prompts=list(config.prompts), dtype=config.model.dtype, output_dir=str(folder))


def parse_compare_config(raw: Any, base_dir: Path | None = None, source: str = "config") -> CompareConfig:
    """A CompareConfig from a plain mapping; relative paths resolve against base_dir. ConfigError lists every
    problem at once."""
    config = validated(CompareConfig, raw, source, "model, data, train and methods")
    if base_dir is not None:
        config = resolve_compare_paths(config, base_dir)
    issues = config.problems()
    if not issues:  # every method's run must be a valid run: checked now, before the first one trains
        for method in config.methods:
            try:
                run_config(config, method, Path(config.output_dir or base_dir or ".") / method)
            except ConfigError as error:
                issues += [f"{method}: {issue}" for issue in error.issues]
    if issues:
        raise ConfigError(issues, source)
    return config


def resolve_compare_paths(config: CompareConfig, base_dir: Path) -> CompareConfig:
    """model, data.path, output_dir and runs_dir relative to base_dir, as a run config's are."""
    probe = RunConfig(model=config.model, data=config.data, output_dir=".")
    from engine.config import resolve_paths

    resolved = resolve_paths(probe, base_dir)
    update: dict[str, Any] = {"model": resolved.model, "data": resolved.data}
    for key in ("output_dir", "runs_dir"):
        if getattr(config, key):
            update[key] = str((base_dir / Path(getattr(config, key)).expanduser()).resolve())
    return config.model_copy(update=update)


def load_compare_config(path: str | Path) -> CompareConfig:
    """Read and validate a comparison's YAML file; relative paths are relative to the file's folder."""
    path = Path(path)
    return parse_compare_config(read_yaml(path), base_dir=path.resolve().parent, source=str(path))


def method_config(config: CompareConfig, method: str) -> MethodConfig:
    """The MethodConfig a method's run trains with (for showing the preset)."""
    preset = config.preset(method)
    return MethodConfig(name=method, **{k: v for k, v in preset.items() if k != "learning_rate"})
