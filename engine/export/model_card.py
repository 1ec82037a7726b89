"""The README model card of an exported folder, and the loading note of an adapter that cannot be merged.

The card says what the folder holds (a merged model, the trained whole model, or an adapter and why), its lineage
(the base, the training stage, the finished runs it started from (model.adapter) and the reference a preference
stage compared with), so SFT -> DPO -> export can be traced from the exported folder alone, the
run's hyperparameters (the options its method reads: engine.config.METHOD_OPTIONS), its final losses, and
how the export was verified.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from engine.config import ADAPTER_METHODS, METHOD_OPTIONS, METHOD_TITLES, RunConfig
from engine.config_stage import FULL_WEIGHT_METHODS, PREFERENCE_STAGES, REFERENCE_STAGES, STAGE_TITLES
from engine.export.verify import Verification
from engine.sentences import Sentence, said

USE_MERGED = [
    "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
    "model = AutoModelForCausalLM.from_pretrained(PATH)",
    "tokenizer = AutoTokenizer.from_pretrained(PATH)",
    "ids = tokenizer.apply_chat_template([{\"role\": \"user\", \"content\": \"Hi\"}], "
    "add_generation_prompt=True, return_tensors=\"pt\", return_dict=True)",
    "print(tokenizer.decode(model.generate(**ids, max_new_tokens=64)[0]))", "```",
]
USE_ADAPTER = [
    "```python", "from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
    "model = AutoPeftModelForCausalLM.from_pretrained(PATH)  # downloads/loads the base named in "
    "adapter_config.json",
    "tokenizer = AutoTokenizer.from_pretrained(PATH)", "```",
]


def title_of(method: str) -> str:
    return METHOD_TITLES.get(method, method)


def unmergeable_reason(method: str) -> Sentence:
    """Why a prompt-learning method's export holds its adapter (keyed: the Export tab words it, see ExportResult)."""
    title = title_of(method)
    return said("engine.export.unmergeable", title=title[0].upper() + title[1:])


def model_card(config: RunConfig, metrics: dict[str, Any], check: Verification, *, merged: bool,
               reason: str | None, name: str, source: str) -> str:
    """README.md of an export named `name` from the run folder `source`."""
    m = config.method
    front = {"base_model": config.model.name_or_path, "library_name": "transformers" if merged else "peft",
             "tags": ["peft-workbench", m.name]}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# {name}", "",
             f"Fine-tuned from `{config.model.name_or_path}` with {title_of(m.name)} in PEFT Workbench, on the "
             f"dataset `{config.data.name}` ({metrics.get('steps', '?')} steps).", ""]
    lines += _what_it_holds(config, check, merged, reason)
    lines += ["", "## Lineage", "", *lineage(config, metrics)]
    lines += ["", "## Hyperparameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in hyperparameters(config).items() if v is not None]
    losses = {k: metrics.get(k) for k in ("train_loss", "final_loss", "eval_loss") if metrics.get(k) is not None}
    if losses:
        lines += ["", "## Final losses", "", "| name | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in losses.items()]
    lines += ["", "## Verification", "", *_verification(check, whole=m.name not in ADAPTER_METHODS)]
    if merged:
        lines += ["", "## Use", "", *USE_MERGED]
    lines += ["", f"Exported from run `{source}` on {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
    return "\n".join(lines)


def lineage(config: RunConfig, metrics: dict[str, Any]) -> list[str]:
    """The base, the stage, the runs merged into the base before training (as metrics.json recorded them) and
    the reference of a preference stage, one line each."""
    stage = config.train.stage
    starts = metrics.get("start") or ([{"run": config.model.adapter}] if config.model.adapter else [])
    lines = [f"- base model: `{config.model.name_or_path}`",
             f"- stage: {STAGE_TITLES.get(stage, stage)} (train.stage {stage}), data `{config.data.name}`"]
    for start in starts:
        what = ", ".join(f"{key} {start[key]}" for key in ("stage", "method", "data") if start.get(key))
        lines.append(f"- started from run `{start['run']}`{f' ({what})' if what else ''}: its adapter was merged "
                     "into the base before this run trained (model.adapter)")
    start = "the base with the adapter of the run it started from merged" if starts else "the base model"
    if stage in REFERENCE_STAGES and config.method.name in FULL_WEIGHT_METHODS:
        lines.append(f"- reference: {start}, a frozen copy of it kept beside the trained weights, what beta kept "
                     "the model close to")
    elif stage in REFERENCE_STAGES:
        lines.append(f"- reference: {start} (this run's adapter disabled), what beta kept the model close to")
    elif stage in PREFERENCE_STAGES:
        lines.append("- reference: none (reference-free: it compares the chosen and the rejected reply only)")
    return lines


def hyperparameters(config: RunConfig) -> dict[str, Any]:
    """The method's own options, its quantization, and the training settings that shaped the result."""
    m, t = config.method, config.train
    hyper: dict[str, Any] = {"method": m.name}
    hyper.update({option: getattr(m, option) for option in METHOD_OPTIONS.get(m.name, ()) if option != "bits"})
    if m.effective_bits:
        hyper["bits"] = m.effective_bits
    hyper.update(learning_rate=t.learning_rate, max_steps=t.max_steps, epochs=None if t.max_steps else t.epochs,
                 batch_size=t.batch_size, gradient_accumulation_steps=t.gradient_accumulation_steps,
                 cutoff_len=t.cutoff_len, lr_scheduler_type=t.lr_scheduler_type, seed=t.seed)
    if t.stage in PREFERENCE_STAGES:
        hyper.update(stage=t.stage, beta=t.beta, **PREFERENCE_OPTIONS.get(t.stage, lambda _: {})(t))
    return hyper


PREFERENCE_OPTIONS = {  # the options each preference stage reads beside beta
    "dpo": lambda t: {"loss_type": t.loss_type, "label_smoothing": t.label_smoothing or None, "rpo_alpha": t.rpo_alpha},
    "simpo": lambda t: {"simpo_gamma": t.simpo_gamma},
    "kto": lambda t: {"desirable_weight": t.desirable_weight, "undesirable_weight": t.undesirable_weight},
}


def _what_it_holds(config: RunConfig, check: Verification, merged: bool, reason: str | None) -> list[str]:
    m, title = config.method, title_of(config.method.name)
    if m.name not in ADAPTER_METHODS:
        return [f"The trained weights of the whole model ({check.dtype})."]
    if not merged:
        return [reason or "", "", "Load it with peft:", "", *USE_ADAPTER]
    lines = [f"The {title} adapter is merged into the base weights ({check.dtype}): this folder is a plain "
             "transformers model and needs no peft."]
    if m.effective_bits:
        lines.append(f"The run trained on a {m.effective_bits}-bit quantized base; the adapter was merged into the "
                     f"base reloaded in {check.dtype}, not into the quantized weights, so outputs can differ slightly "
                     "from the quantized model used in training.")
    return lines


def _verification(check: Verification, whole: bool) -> list[str]:
    where = f"{check.verified_on} prompts ({check.prompt_source})"
    if check.max_abs_diff is not None:
        against = f", and from the base model's by {check.base_diff:.3g}" if check.base_diff is not None else ""
        return [f"On {where}, this folder's logits differ from the {'trained' if whole else 'adapter'} model's by at "
                f"most {check.max_abs_diff:.3g} (tolerance {check.tolerance:.3g}){against}."]
    if check.base_diff is not None:
        return [f"With this adapter the logits differ from the base model's by up to {check.base_diff:.3g} on "
                f"{where}."]
    return []


def how_to_load(config: RunConfig, reason: str) -> str:
    """HOW_TO_LOAD.md beside an adapter that cannot be merged."""
    return (
        f"# Loading this {title_of(config.method.name)} adapter\n\n{reason}\n\n```python\nfrom peft import PeftModel\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        "tokenizer = AutoTokenizer.from_pretrained(PATH)  # carries the chat template the run trained with\n"
        f"base = AutoModelForCausalLM.from_pretrained({config.model.name_or_path!r})\n"
        "base.resize_token_embeddings(len(tokenizer))  # only needed when the chat template added tokens\n"
        "model = PeftModel.from_pretrained(base, PATH)\n```\n"
    )
