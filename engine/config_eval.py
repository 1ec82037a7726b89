"""EvalConfig: one evaluation job (`EVALS/NAME/config.yaml`, or what `python launch.py eval CONFIG.yaml` reads).

Plain Python (pydantic), beside engine/config.py as engine/config_stage.py is. An evaluation answers the rows of a
test set with each model it names and measures the answers (engine/eval/job.py):

    models:          [base, workspace/runs/tuned, workspace/exports/merged]   # "base": the base model itself
    base:            the base model (hub id or folder); empty: the one the runs were trained on
    data:            {path: test.jsonl}     # any dataset a run reads, read as training reads it (DataConfig)
    validation_of:   workspace/runs/tuned   # or: that run's own held-out rows (its data.val_size)
    max_rows, batch_size, cutoff_len
    sampling:        {max_new_tokens: 256, temperature: 0}   # the chat's settings; greedy by default
    general:         true: also the built-in general prompts (engine/eval/general.py)
    prompts:         [Who are you?]   # also answered by every model, kept in answers.jsonl (no reference)
    judge:           {base_url: http://localhost:8000/v1, model: NAME, api_key_env: OPENAI_API_KEY}   # optional:
                     an OpenAI-compatible endpoint scores the answers blind (engine/eval/judge.py); off when absent
    output_dir:      where the job's folder is (default WORKSPACE/evals/NAME, NAME the config file's stem)

A relative path (a model, data.path, validation_of, output_dir) is relative to the config file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from engine import config_migrate as migrate
from engine import datapaths
from engine.config import DataConfig, DType
from engine.config_read import read_yaml, validated, without_problems
from engine.sampling import SamplingConfig
from engine.sentences import said

BASE = "base"  # the name under `models` that means the base model itself, adapters off
DEFAULT_RUBRIC = (
    "You grade answers to a question. Each answer comes from a different model; they are labelled by letter in a "
    "random order. Score each one on its own for correctness and helpfulness, against the reference answer when "
    "one is given, ignoring its position and its length: 1 is wrong or useless, 10 is fully correct and helpful.")


class JudgeConfig(BaseModel):
    """eval.judge: an OpenAI-compatible chat-completions endpoint that scores every model's answer to a row."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    base_url: str = Field(min_length=1, description=(
        "The endpoint's base URL, up to /v1 (its chat completions are at BASE_URL/chat/completions)."))
    model: str = Field(min_length=1, description="The judge model's name, as the endpoint knows it.")
    api_key_env: str | None = Field(None, description=(
        "The name of the environment variable that holds the API key (never the key itself); empty: no key."))
    rubric: str = Field(DEFAULT_RUBRIC, min_length=1, description=(
        "The judge's instructions (its system message); the question, the reference and the answers follow."))
    seed: int = Field(0, description="Seeds the random order in which each row's answers are shown.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for each of the judge's replies.")


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    models: list[str] = Field(min_length=1, description=(
        "What to evaluate: 'base' (the base model itself), finished run folders of any method or stage, exported "
        "model folders. Adapters share one loaded base."))
    base: str | None = Field(None, description=(
        "The base model (hub id or folder); empty: the one the runs were trained on."))
    data: DataConfig | None = Field(None, description=(
        "The test set: any dataset a run can train on, read and normalised as training reads it."))
    validation_of: str | None = Field(None, description=(
        "Instead of data: a run folder whose own held-out rows (its data.val_size, drawn with its train.seed) "
        "are the test set."))
    max_rows: int | None = Field(None, ge=1, description="Evaluate only the first N rows of the test set.")
    batch_size: int = Field(8, ge=1, description="Rows generated (and scored for loss) together.")
    cutoff_len: int = Field(512, ge=8, description=(
        "Tokens per row for the loss, as train.cutoff_len cuts them (a run's own when validation_of is set)."))
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description=(
        "Generation settings, the chat's: greedy (temperature 0) by default; max_new_tokens caps each answer."))
    general: bool = Field(True, description=(
        "Also answer a small built-in set of general prompts (English and Chinese) with every model, to see how "
        "much a tune changed answers beyond its own data."))
    prompts: list[str] = Field(default_factory=list, description=(
        "Prompts of your own that every model also answers (answers.jsonl); no reference, no metric."))
    judge: JudgeConfig | None = Field(None, description=(
        "Optional: an OpenAI-compatible endpoint that scores each model's answers blind (off when absent)."))
    dtype: DType = Field("auto", description="Weights dtype of the base: auto is bfloat16 on GPUs that support it.")
    output_dir: str | None = Field(None, description="The evaluation's folder (default WORKSPACE/evals/NAME).")

    def problems(self) -> list[str]:
        issues = []
        if (self.data is None) == (self.validation_of is None):
            issues.append("Give the test set as data (a dataset file) or validation_of (a run folder), one of them.")
        if len(set(self.models)) != len(self.models):
            issues.append("models lists the same model twice: list each once.")
        if self.models == [BASE] and not self.base:
            issues.append("models has only 'base': name the base model in base, or add a run.")
        return issues

    def to_yaml(self) -> str:
        return yaml.safe_dump(migrate.CONFIG.stamp(self.model_dump(mode="json", exclude_none=True)),
                              sort_keys=False, allow_unicode=True)


def eval_data_problem(name: str, shape: str) -> str | None:
    """The sentence for a test set of preference rows (`shape` as engine.config_stage.shape_problem takes it:
    "preference..." for pairs, "kto" for replies marked good or bad), which an evaluation does not read; None for
    SFT rows. The engine raises it as it reads the file (engine.eval.testset) and the Evaluate tab refuses with it."""
    if not shape.startswith(("preference", "kto")):
        return None
    kto = shape == "kto"
    return said("engine.eval.preference_rows", name=name,
                held=said("engine.stage.held_kto") if kto else said("engine.stage.held_pairs"),
                example=said("engine.eval.example_kto") if kto else said("engine.eval.example_pairs"))


def parse_eval_config(raw: Any, base_dir: Path | None = None, source: str = "config") -> EvalConfig:
    """An EvalConfig from a plain mapping of any schema version; relative paths resolve against base_dir.
    ConfigError lists every problem at once."""
    config = validated(EvalConfig, raw, source, "models and data (or validation_of)")
    return without_problems(resolve_eval_paths(config, base_dir) if base_dir is not None else config, source)


def _local(path: str, base_dir: Path) -> str:
    """A relative folder that exists under base_dir as an absolute path; anything else (a hub id) as it is."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or not (base_dir / candidate).exists():
        return path
    return str((base_dir / candidate).resolve())


def resolve_eval_paths(config: EvalConfig, base_dir: Path) -> EvalConfig:
    update: dict[str, Any] = {"models": [m if m == BASE else _local(m, base_dir) for m in config.models]}
    if config.base:
        update["base"] = _local(config.base, base_dir)
    if config.data is not None:
        update["data"] = config.data.with_paths(lambda path: datapaths.resolve(path, base_dir))
    if config.validation_of:
        update["validation_of"] = str((base_dir / Path(config.validation_of).expanduser()).resolve())
    if config.output_dir:
        update["output_dir"] = str((base_dir / Path(config.output_dir).expanduser()).resolve())
    return config.model_copy(update=update)


def load_eval_config(path: str | Path) -> EvalConfig:
    """Read and validate an evaluation's YAML file; relative paths are relative to the file's folder."""
    path = Path(path)
    return parse_eval_config(read_yaml(path), base_dir=path.resolve().parent, source=str(path))
