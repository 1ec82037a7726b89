"""Verification of an export: on a few prompts from the run's own data, the exported folder must give the
trained model's logits (max abs difference under a per-dtype tolerance) and must not give the base model's.

`Verification` holds the figures (what the model card and the export's result report); `VerificationError`
is a failed check, one sentence for the user.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.jobs.failures import DataError, EngineError
from engine.sentences import said

# Allowed max |exported - adapter| logit difference, relative to the largest |logit| (at least 1).
# float32 merges differ only by summation order; 16-bit ones round W + BA once more than the adapter does.
TOLERANCE = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}
VERIFY_PROMPTS = 3  # rows of the run's data used to verify
VERIFY_TOKENS = 128  # at most this many tokens of each
FALLBACK_PROMPTS = ("Hello! Who are you?", "What can you do?", "Write one sentence about the sea.")

Log = Callable[[str], None]


class VerificationError(EngineError, RuntimeError):
    """The exported model does not answer like the trained one (or answers like the untrained base)."""


@dataclass(kw_only=True)
class Verification:
    dtype: str | None = None  # the export's weights dtype, which sets the tolerance
    max_abs_diff: float | None = None  # exported vs adapter (or trained) model logits
    base_diff: float | None = None  # exported vs base model logits (must exceed the tolerance)
    tolerance: float | None = None
    verified_on: int = 0  # prompts compared
    prompt_source: str = "the run's data"


def verification_prompts(config: RunConfig, tokenizer: Any, check: Verification, log: Log) -> list[Any]:
    """Token ids of a few whole conversations from the run's own data, rendered with its chat template."""
    from engine.data.pipeline import load_rows
    from engine.data.tokens import chat_spans

    try:
        rows, _ = load_rows(config.data, config.train.seed)
    except (DataError, OSError) as error:  # the data may be gone or changed since; verification still runs
        log(said("engine.log.export_builtin_prompts", error=str(error).splitlines()[0]))
        rows = [{"messages": [{"role": "user", "content": text}]} for text in FALLBACK_PROMPTS]
        check.prompt_source = "built-in prompts"
    texts = []
    for number, row in enumerate(rows[:VERIFY_PROMPTS], 1):
        if "text" in row:
            texts.append(row["text"])
        else:  # rendered as training rendered it (a system prompt folded where the template rejects one, tools)
            name = config.data.name
            texts.append(chat_spans(row["messages"], tokenizer, name, number, row.get("tools"))[0])
    check.verified_on = len(texts)
    return encode(tokenizer, texts)


def encode(tokenizer: Any, texts: list[str]) -> list[Any]:
    return [tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :VERIFY_TOKENS]
            for text in texts]


def logits_of(model: Any, prompts: list[Any]) -> list[Any]:
    """Float32 logits of each prompt's own positions (prompt-learning models prepend virtual ones)."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for ids in prompts:
            logits = model(input_ids=ids.to(device)).logits
            out.append(logits[:, -ids.shape[-1]:].float().cpu())
    return out


def max_diff(a: list[Any], b: list[Any]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def scale_of(logits: list[Any]) -> float:
    return max(1.0, max(float(x.abs().max()) for x in logits))


def free(*objects: Any) -> None:
    """Drop models from memory (the caller's names too must go: pass them, then let them fall out of scope)."""
    import torch

    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def compare(check: Verification, exported: list[Any], reference: list[Any], base: list[Any] | None) -> None:
    """The exported logits must match the reference's within the dtype's tolerance and differ from the base's."""
    check.max_abs_diff = max_diff(exported, reference)
    check.tolerance = TOLERANCE[check.dtype] * scale_of(reference)
    if check.max_abs_diff > check.tolerance:
        raise VerificationError(said("engine.export.logits_differ", diff=f"{check.max_abs_diff:.3g}", dtype=check.dtype,
                                     tolerance=f"{check.tolerance:.3g}"))
    if base is not None:
        check.base_diff = max_diff(exported, base)
        if check.base_diff <= check.tolerance:
            raise VerificationError(said("engine.export.base_logits", diff=f"{check.base_diff:.3g}", dtype=check.dtype,
                                         tolerance=f"{check.tolerance:.3g}"))


def compare_adapter(check: Verification, adapter: list[Any], base: list[Any], title: str) -> None:
    """An adapter exported as it is (not merged) must change the base's logits."""
    check.base_diff = max_diff(adapter, base)
    tolerance = TOLERANCE[check.dtype] * scale_of(base)
    if check.base_diff <= tolerance:
        raise VerificationError(said("engine.export.adapter_unchanged", title=title, diff=f"{check.base_diff:.3g}"))


def reload_and_compare(config: RunConfig, folder: Path, prompts: list[Any], reference: list[Any],
                       base_logits: list[Any] | None, check: Verification, log: Log) -> None:
    """Load the written folder with transformers alone and compare its logits before calling it done."""
    from transformers import AutoModelForCausalLM

    from engine.model.loading import DTYPES, device

    log(said("engine.log.export_reloading"))
    exported = AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPES[check.dtype],
                                                    trust_remote_code=config.model.trust_remote_code)
    exported.to(device()).eval()
    compare(check, logits_of(exported, prompts), reference, base_logits)
    free(exported)
