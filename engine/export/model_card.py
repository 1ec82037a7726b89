"""The README model card of an exported folder, and the loading note of an adapter that cannot be merged.

The card says what the folder holds (a merged model, the trained whole model, or an adapter and why), the
run's hyperparameters (the options its method reads: engine.config.METHOD_OPTIONS), its final losses, and
how the export was verified.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from engine.config import ADAPTER_METHODS, METHOD_OPTIONS, METHOD_TITLES, RunConfig
from engine.export.verify import Verification

UNMERGEABLE_REASON = (
    "{title} learns virtual tokens that are fed to the model with every input, not a change of its weights, "
    "so it cannot be merged: the export holds the adapter, loadable with peft."
)
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


def unmergeable_reason(method: str) -> str:
    title = title_of(method)
    return UNMERGEABLE_REASON.format(title=title[0].upper() + title[1:])


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
    return hyper


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
