"""Before the first step: will one training step fit in memory? The estimate of engine/estimate/memory.py, on
the loaded model (its weights and trainable parameters measured) and the largest batch the data makes.

The estimate is the one the Train tab shows before Start (there from config.json alone): weights, gradients and
optimizer states of what trains, activations, the attention mask (a padded batch: one square per row; a packed
batch, one square over all its tokens), the logits (one chunk of positions where the loss is taken over trained
positions in chunks, engine/train/logits.py, else the whole largest batch: the preference stage, and model
families that keep the full computation) and the process's overhead. A configuration whose estimate, even at the
low end of its accuracy, exceeds the memory the machine has cannot train; it is refused with one sentence before
the first step, where it would otherwise die mid-allocation (batch 8192 at cutoff 8192 once asked torch for 488
GiB), with a configuration that fits (engine/estimate/advice.py) where there is one.

Virtual tokens (prefix, prompt and P-tuning) are counted: prompt and P-tuning put `num_virtual_tokens` in front
of every row, prefix tuning keeps their keys and values in every layer, and a million of them cannot train; that is
refused before the model is loaded (`check_virtual_tokens`, from config.json alone). The sentence names the lever
of the part that dominates: method.r for LoRA's optimizer states, method.num_virtual_tokens for virtual
tokens, train.batch_size and train.cutoff_len for what a batch's tokens take.

The memory this process may take is engine/estimate/room.py's memory_room on the CPU, the GPU's free memory there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import MethodConfig, RunConfig
from engine.estimate.batch import largest_batch
from engine.estimate.memory import (
    ACCURACY,
    ADAM_BYTES,
    DEQUANT_COPIES,
    GIB,
    GPU_CONTEXT,
    VIRTUAL,
    MemoryEstimate,
    quantized_linear,
    shape_of,
    step_memory,
    virtual_bytes,
)
from engine.estimate.room import memory_room
from engine.jobs.failures import EngineError
from engine.sentences import Sentence, said


class MemoryCheckError(EngineError):
    """A configuration that cannot fit; the message says what to lower."""


StepMemory = MemoryEstimate  # the one estimate (engine/estimate/memory.py), here of the loaded model's step


def estimate(model: Any, trainable: int, lengths: list[int], batch_size: int, packing: bool,
             pack_len: int | None = None, method: MethodConfig | None = None, chunked: bool = False,
             config: RunConfig | None = None) -> StepMemory:
    """The estimate (engine.estimate.memory.step_memory) for `model` (a loaded model, adapters applied) on rows of
    `lengths` tokens, its weights and trainable parameters measured; `chunked`: the loss projects one chunk of
    positions at a time (engine/train/logits.py), not the whole batch; `config` the run's (optimizer, gradient
    checkpointing), None: AdamW without checkpointing."""
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    parameters = list(model.parameters())
    shape = shape_of(text, parameters[0].element_size())
    rows, length = largest_batch(lengths, batch_size, packing, pack_len)
    trained = trainable * next((p.element_size() for p in parameters if p.requires_grad), 4)
    on_gpu = parameters[0].device.type == "cuda"
    quantized = config is not None and config.method.effective_bits and not on_gpu
    dequant = quantized_linear(text.to_dict()) * 4 * DEQUANT_COPIES if quantized else 0
    return step_memory(shape, config, rows=rows, length=length, trainable=trainable, trained_bytes=trained,
                       weights=sum(p.numel() * p.element_size() for p in parameters),
                       device="gpu" if on_gpu else "cpu", longest=max(lengths, default=0), chunked=chunked,
                       method=method if method is not None else (config.method if config is not None else None),
                       dequant=int(dequant))


def available_memory(root: Path = Path("/")) -> tuple[int, str]:
    """(bytes free, where): the GPU's free memory when training runs there, else the RAM this process may still
    take (memory_room)."""
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return free, said("engine.memory.gpu")
    return memory_room(root)


PARTS = {"the weights": "weights", "the reference model": "reference", "the gradients": "gradients",
         "the optimizer states": "optimizer", "the activations": "activations", "the attention mask": "attention",
         "the logits": "logits", "the virtual tokens' activations": "virtual"}  # a part's name -> its message key


def lower(key: str, now: Any) -> Sentence:
    return said("engine.memory.lower", key=key, now=now)


def levers(part: str, batch_size: int, cutoff_len: int, packing: bool, longest: int,
           method: MethodConfig | None) -> list[Sentence]:
    """What lowers `part`, the term that dominates the bound."""
    name = method.name if method is not None else ""
    if part == "the virtual tokens' activations" or (part == "the optimizer states" and name in VIRTUAL):
        return [lower("method.num_virtual_tokens", method.num_virtual_tokens)]  # type: ignore[union-attr]
    if part == "the gradients":
        part = "the optimizer states"
    if part == "the optimizer states" and name in ("lora", "dora", "qlora"):
        return [lower("method.r", method.r), said("engine.memory.fewer_targets")]  # type: ignore[union-attr]
    if part == "the optimizer states" and name == "freeze":
        return [lower("method.freeze_trainable_layers", method.freeze_trainable_layers)]  # type: ignore
    if part == "the reference model":
        return [said("engine.memory.adapter_reference")]
    if part in ("the optimizer states", "the weights"):
        return [said("engine.memory.smaller_model")]
    found = [lower("train.batch_size", batch_size)]
    if longest >= cutoff_len:  # rows are cut there: a lower cutoff shortens them
        found.append(lower("train.cutoff_len", cutoff_len))
    if packing:
        found.append(said("engine.memory.no_packing"))
    return found


def either(choices: list[Sentence]) -> Sentence:
    """'A, or B, or C' of `choices` (one sentence, each part keyed)."""
    joined = choices[-1]
    for choice in reversed(choices[:-1]):
        joined = said("engine.memory.or", first=choice, then=joined)
    return joined


def check_fits(step: StepMemory, available: int, where: str, batch_size: int, cutoff_len: int, packing: bool,
               method: MethodConfig | None = None, advice: str = "") -> str:
    """A log line with the estimate; MemoryCheckError when the step will not fit even at the estimate's low end
    (ACCURACY under it). The weights are loaded already and, on the CPU, the process itself runs: what must
    still fit in `available` is the rest. `advice`: a sentence of a configuration that fits (engine.estimate.advice),
    added to the refusal."""
    already = step.weights + (step.overhead if step.device == "cpu" else GPU_CONTEXT)
    still_needed = step.total - already
    if still_needed * (1 - ACCURACY) <= available:
        return said("engine.log.memory_estimate", summary=step.summary(), tokens=f"{step.tokens:,}",
                    free=f"{available / GIB:.1f}", where=where,
                    tight=said("engine.log.memory_tight") if still_needed > available else "")
    part, size = step.largest()
    packed = said("engine.memory.packed", tokens=f"{step.tokens:,}") if packing else ""
    found = levers(part, batch_size, cutoff_len, packing, step.longest, method)
    raise MemoryCheckError(said(
        "engine.memory.cannot_fit", needed=f"{step.total / GIB:,.1f}", part=said(f"engine.memory.part.{PARTS[part]}"),
        packed=packed, size=f"{size / GIB:,.1f}", free=f"{available / GIB:,.1f}", where=where, levers=either(found),
        advice=advice))


def check_virtual_tokens(config: Any, lengths: list[int], available: tuple[int, str] | None = None) -> str | None:
    """Before the model is loaded: MemoryCheckError where the virtual tokens alone (their parameters with
    gradients and Adam states, and what they add to the largest batch) cannot fit; a log line where they can,
    None for a method without virtual tokens or a model whose config.json gives no sizes."""
    from engine.model import config_json

    method = config.method
    if method.name not in VIRTUAL:
        return None
    found = config_json.model_config_json(config.model.name_or_path, config.model.revision)
    try:
        shape = shape_of(found, 2) if found is not None else None  # 16-bit activations: a lower bound
    except (TypeError, ValueError):
        shape = None
    if shape is None:
        return None
    per_token = shape.layers * 2 * shape.kv_width if method.name == "prefix" else shape.hidden
    parameters = method.num_virtual_tokens * per_token * (4 + ADAM_BYTES)  # fp32 weights, gradient and moments
    needed = parameters + virtual_bytes(shape, method, 1, max(lengths, default=0))  # one row, packed or not
    free, where = available if available is not None else available_memory()
    if needed <= free:
        return said("engine.log.memory_virtual", needed=f"{needed / GIB:.2f}")
    raise MemoryCheckError(said(
        "engine.memory.virtual_tokens", count=f"{method.num_virtual_tokens:,}", needed=f"{needed / GIB:,.1f}",
        free=f"{free / GIB:,.1f}", where=where, now=method.num_virtual_tokens))
