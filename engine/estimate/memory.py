"""Peak memory of one training step from a model's config.json and a RunConfig alone: no torch, no weights.

The one estimate the Train tab shows before Start and the engine checks before the first step
(engine/train/recipe.py check_memory): the parts are those a step holds at its peak, in the backward pass.

- weights: every parameter in the dtype it trains in (model.dtype: auto is float32 on the CPU, bfloat16 on a
  GPU); with method.bits 4 or 8 the decoder's Linear layers take half a byte (plus one float32 scale per block of
  64) or one byte a parameter, the rest (embeddings, norms, head) float32, as prepare_model_for_kbit_training
  leaves them. Adapter parameters are float32 (peft's autocast_adapter_dtype).
- gradients: one per trainable parameter, in its dtype.
- reference (train.stage dpo and kto, whose loss compares with the model the run started from): with full and
  freeze a frozen copy of every weight (engine/train/preference.py frozen_reference); with an adapter method the
  base with the adapter disabled, so only TRL's frozen "ref" copy of the adapter's weights.
- optimizer: AdamW's two moments per trainable parameter in its dtype; one byte each for the 8-bit optimizers;
  none for SGD.
- activations: what each decoder layer keeps per token for backward (ACT_HIDDEN hidden-sized and ACT_INTER
  intermediate-sized tensors, calibrated by tests/bench/memory_estimate.py); with gradient checkpointing only
  each layer's input and one layer's worth; LoRA's dropout keeps copies of each targeted layer's input; QLoRA on
  the CPU dequantized copies of the weights. The attention mask (one byte per query-key pair of a padded row;
  none where packing runs with a variable-length kernel) and what virtual tokens add are parts of their own.
- logits: one chunk of positions (chunk_len, as engine/train/logits.py takes the loss over trained positions),
  float32, with their gradient; the whole batch where the loss keeps the full computation (preference stages).
- overhead: on the CPU the engine process itself (Python, torch, transformers, peft, the tokenized data:
  CPU_PROCESS, measured); on a GPU the CUDA context and the allocator's slack (GPU_CONTEXT, and GPU_SLACK of the
  rest).

`verdict(total, free)`: fits / tight / will not fit, by the accuracy ACCURACY the bench measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.config import RunConfig
from engine.config_stage import FULL_WEIGHT_METHODS, REFERENCE_STAGES
from engine.config_stage import PREFERENCE_STAGES as PREFERENCE  # TRL's losses take the full logits
from engine.estimate.batch import largest_batch
from engine.model import shapes
from engine.sentences import Sentence, said

PART_KEYS = {"the weights": "engine.log.part.weights", "the reference model": "engine.log.part.reference",
             "the gradients": "engine.log.part.gradients", "the optimizer states": "engine.log.part.optimizer",
             "the activations": "engine.log.part.activations", "the attention mask": "engine.log.part.attention",
             "the logits": "engine.log.part.logits", "the virtual tokens' activations": "engine.log.part.virtual",
             "the overhead": "engine.log.part.overhead"}  # a part's name -> its short name's key in the run log

GIB = 2**30
MIB = 2**20
ADAM_BYTES = 4 + 8  # the lower bound's fp32 gradient + two fp32 moments per trainable parameter
VIRTUAL = ("prefix", "prompt", "ptuning")  # methods that add virtual tokens
ADAPTERS = ("lora", "dora", "qlora", "ia3", "prefix", "prompt", "ptuning")
MIN_CHUNK = 256  # positions per chunk at least: fewer make the head's matmul small and the Python loop long

# Calibrated on the CPU by tests/bench/memory_estimate.py (least squares over its configurations; the README's
# table): the figures of one machine, transformers 5.23 and torch's CPU kernels.
ACT_HIDDEN = 0  # hidden-sized tensors a decoder layer keeps per token for backward (the fit leaves them to ACT_INTER)
ACT_INTER = 7.4  # intermediate-sized ones (the MLP's gate, up, their product, the activation, and the rest)
DROPOUT_COPIES = {"cpu": 3.9, "gpu": 2.0}  # of each LoRA layer's input with lora_dropout (output and mask; the
# CPU's BulkDropout measured, the GPU's nn.Dropout counted: output and a one-byte mask, rounded up)
DEQUANT_COPIES = 2.5  # of the quantized Linear weights, dequantized in float32 by bitsandbytes on the CPU (measured)
LOGIT_COPIES = 2  # a chunk's float32 logits and their gradient
CPU_PROCESS = 583 * MIB  # the engine process before the model: interpreter, torch, transformers, peft, data
GPU_CONTEXT = 600 * MIB  # CUDA context and cuBLAS workspace, outside torch's allocator
GPU_SLACK = 0.08  # the caching allocator's fragmentation over what tensors hold
ACCURACY = 0.15  # the bench's stated error: within it a configuration is "tight"
LORA_NAMES = ("lora", "dora", "qlora")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Shape:
    """The sizes the estimate needs, from a loaded model's config or from config.json."""

    hidden: int
    layers: int
    vocab: int
    kv_width: int  # one layer's key (or value) width: key/value heads * head_dim
    element: int  # bytes of one activation
    intermediate: int = 0
    heads: int = 1


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The decoder's part of a config.json (a multimodal model keeps it under text_config)."""
    inner = config.get("text_config")
    return {**config, **inner} if isinstance(inner, dict) else config


def shape_of(config: Any, element: int) -> Shape:
    """A Shape from a transformers config or a config.json dict (a decoder's text config)."""
    get = (lambda key, default=None: config.get(key, default)) if isinstance(config, dict) else (
        lambda key, default=None: getattr(config, key, default))
    hidden, heads = int(get("hidden_size")), int(get("num_attention_heads") or 1)
    head_dim = int(get("head_dim") or hidden // heads)
    kv_heads = int(get("num_key_value_heads") or heads)
    inter = int(get("intermediate_size") or 4 * hidden)
    return Shape(hidden, int(get("num_hidden_layers")), int(get("vocab_size")), kv_heads * head_dim, element, inter,
                 heads)


def chunk_len(positions: int, vocab: int, hidden: int) -> int:
    """Positions per chunk: as Liger Kernel sizes them, so that a chunk's logits take about what the hidden states
    of all positions take (positions / ceil(vocab / hidden), to a power of two), and at least MIN_CHUNK."""
    parts = max(1, math.ceil(vocab / hidden))
    return max(MIN_CHUNK, 2 ** math.ceil(math.log2(max(1, math.ceil(positions / parts)))))


def layer_activations(shape: Shape, tokens: int, checkpointing: bool = False) -> int:
    """Bytes the decoder layers keep for backward over `tokens` tokens."""
    one_layer = int(tokens * (ACT_HIDDEN * shape.hidden + ACT_INTER * shape.intermediate) * shape.element)
    if checkpointing:  # each layer's input, and one layer recomputed at a time
        return tokens * shape.hidden * shape.layers * shape.element + one_layer
    return one_layer * shape.layers


def dropout_bytes(shape: Shape, method: Any, tokens: int, device: str) -> int:
    """What LoRA's dropout keeps: a copy of each targeted Linear layer's input (and its mask) per token, in every
    layer; gradient checkpointing did not lower it on the CPU (the bench's M-lora-ckpt)."""
    if method is None or method.name not in LORA_NAMES or not method.lora_dropout:
        return 0
    targets = method.target_modules
    widths = {"q_proj": shape.hidden, "k_proj": shape.hidden, "v_proj": shape.hidden, "o_proj": shape.hidden,
              "gate_proj": shape.hidden, "up_proj": shape.hidden, "down_proj": shape.intermediate}
    names = list(widths) if targets == "all-linear" or isinstance(targets, str) else targets
    per_token = sum(widths.get(name, shape.hidden) for name in names)
    return int(DROPOUT_COPIES[device] * per_token * tokens * shape.layers * shape.element)


def batch_bytes(shape: Shape, rows: int, length: int, keys: int, checkpointing: bool = False) -> tuple[int, int, int]:
    """(activations, full logits, attention mask) of `rows` rows of `length` tokens attending to `keys` positions."""
    tokens = rows * length
    return (layer_activations(shape, tokens, checkpointing),
            tokens * shape.vocab * (shape.element + 4),
            rows * length * keys)  # a boolean mask: one byte per query-key pair


def virtual_bytes(shape: Shape, method: Any, rows: int, length: int, checkpointing: bool = False) -> int:
    """What `method`'s virtual tokens add to a batch of `rows` rows of `length` tokens: prompt and P-tuning
    lengthen every row by them, prefix tuning adds their keys and values in every layer and row."""
    if method is None or method.name not in VIRTUAL:
        return 0
    virtual = method.num_virtual_tokens
    if method.name == "prefix":
        cache = rows * virtual * shape.layers * 2 * shape.kv_width * shape.element
        return cache + rows * length * virtual  # and the mask's columns for them
    longer = batch_bytes(shape, rows, length + virtual, length + virtual, checkpointing)
    return sum(longer) - sum(batch_bytes(shape, rows, length, length, checkpointing))


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step's peak, by what needs them, on `device` ("cpu": RAM, "gpu": VRAM)."""

    device: str
    tokens: int  # in the largest batch
    longest: int  # the longest row, in tokens
    weights: int
    gradients: int
    optimizer: int
    activations: int
    logits: int
    attention: int
    virtual: int = 0  # what the virtual tokens add to the activations, logits and attention mask
    overhead: int = 0
    reference: int = 0  # dpo's and kto's frozen reference: a copy of the weights (full, freeze) or of the adapter
    rows: int = 0

    @property
    def total(self) -> int:
        return (self.weights + self.reference + self.gradients + self.optimizer + self.activations + self.logits
                + self.attention + self.virtual + self.overhead)

    def parts(self) -> dict[str, int]:
        """{part's name in a sentence: bytes}, in the order the page lists them."""
        return {"the weights": self.weights, "the reference model": self.reference, "the gradients": self.gradients,
                "the optimizer states": self.optimizer,
                "the activations": self.activations, "the attention mask": self.attention, "the logits": self.logits,
                "the virtual tokens' activations": self.virtual, "the overhead": self.overhead}

    def largest(self) -> tuple[str, int]:
        """The part that takes most, of those a setting can lower (not the process's own overhead)."""
        parts = self.parts()
        parts.pop("the overhead")
        return max(parts.items(), key=lambda item: item[1])

    def summary(self) -> Sentence:
        """"1.20 GiB (weights 0.50, activations 0.70)": the total and each part of at least 1 MiB, keyed."""
        shown: Sentence | str = ""
        for name, size in reversed([item for item in self.parts().items() if item[1] >= MIB]):
            part = said("engine.log.memory_part", part=said(PART_KEYS[name]),
                        size=f"{size / GIB:.2f}")
            shown = said("engine.log.comma", first=part, then=shown) if shown else part
        return said("engine.log.memory_summary", total=f"{self.total / GIB:.2f}", parts=shown)


def weight_element(config: RunConfig, device: str) -> int:
    """Bytes of one weight as the engine loads it: model.dtype, auto being float32 on the CPU, bfloat16 on a GPU."""
    dtype = config.model.dtype
    if dtype == "auto":
        return 2 if device == "gpu" else 4
    return DTYPE_BYTES[dtype]


def weight_bytes(model_config: dict[str, Any], bits: int | None, element: int) -> int | None:
    """The base model's weights in memory; None where config.json lacks the sizes."""
    total = shapes.estimate_total(model_config)
    if total is None:
        return None
    if not bits:
        return total * element
    linear = quantized_linear(model_config)
    per_linear = 0.5 + 4 / 64 if bits == 4 else 1 + 4 / 64  # bitsandbytes: a float32 scale per block
    return int(linear * per_linear + (total - linear) * 4)  # the rest float32 (prepare_model_for_kbit_training)


def quantized_linear(model_config: dict[str, Any]) -> int:
    """Parameters of the decoder layers' Linear modules: what bitsandbytes quantizes."""
    decoder = shapes.decoder(model_config)
    if decoder is not None:
        return decoder.layers * sum(linear.params for linear in decoder.linears)
    shape = shape_of(model_config, 4)
    embed = shape.vocab * shape.hidden * (1 if model_config.get("tie_word_embeddings", False) else 2)
    return (shapes.estimate_total(model_config) or embed) - embed


def trainable_count(model_config: dict[str, Any], config: RunConfig) -> int | None:
    counted = shapes.count(model_config, config.method)
    if counted is not None:
        return int(counted["trainable_params"])
    if config.method.name == "full":
        return shapes.estimate_total(model_config)
    return None


def estimate(config: RunConfig, model_config: dict[str, Any], device: str = "cpu",
             lengths: list[int] | None = None) -> MemoryEstimate | None:
    """The step's peak memory before Start, from config.json: the largest batch is the worst case. Without
    `lengths`, batch_size rows of cutoff_len tokens (packed rows hold as many tokens); with the dataset's measured
    token lengths (one per row, as the inspection counts them, cut at cutoff_len), the largest batch those rows
    make, as the check before the first step takes it (padded to the longest rows; packed into rows of pack_len,
    else cutoff_len; packing auto: the larger of the two). None where config.json lacks the sizes or the trainable
    count cannot be derived from it."""
    found = text_config(model_config)
    t = config.train
    element = weight_element(config, device)
    try:
        shape = shape_of(found, element)
    except (TypeError, ValueError, KeyError):
        return None
    trainable = trainable_count(found, config)
    weights = weight_bytes(found, config.method.effective_bits, element)
    if trainable is None or weights is None:
        return None
    adapter = config.method.name in ADAPTERS
    trained = trainable * (4 if adapter else element)  # peft keeps adapters in float32
    rows = t.batch_size * (2 if t.stage in PREFERENCE else 1)
    dequant = quantized_linear(found) * 4 * DEQUANT_COPIES if config.method.effective_bits and device == "cpu" else 0
    batches, longest = [(rows, t.cutoff_len)], None
    if lengths:
        cut = [min(length, t.cutoff_len) for length in lengths]
        longest = max(cut)  # the longest row as trained: cut at cutoff_len
        packings = {"on": (True,), "off": (False,)}.get(t.packing, (False, True))
        batches = [largest_batch(cut, rows, packed, t.pack_len or t.cutoff_len) for packed in packings]
    steps = [step_memory(shape, config, rows=count, length=length, trainable=trainable, trained_bytes=trained,
                         weights=weights + (trained if adapter else 0), device=device, dequant=int(dequant),
                         longest=longest) for count, length in batches]
    return max(steps, key=lambda step: step.total)


def step_memory(shape: Shape, config: RunConfig | None, *, rows: int, length: int, trainable: int,
                trained_bytes: int, weights: int, device: str = "cpu", longest: int | None = None,
                chunked: bool | None = None, mask: bool = True, method: Any = None, dequant: int = 0
                ) -> MemoryEstimate:
    """The parts of one step of `rows` rows of `length` tokens: what `estimate` computes from config.json and the
    engine from the loaded model (its weights' and trainable parameters' bytes measured). `config` None: a bare
    step (AdamW, no checkpointing, `method`); `mask`: the attention takes a materialised mask; `dequant`: bytes of
    the quantized weights dequantized for the matmuls (quantized_linear)."""
    t = config.train if config is not None else None
    method = config.method if config is not None else method
    checkpointing = bool(t and t.gradient_checkpointing)
    tokens = rows * length
    activations, full_logits, attention = batch_bytes(shape, rows, length, length, checkpointing)
    if chunked is None:
        chunked = t is None or t.stage not in PREFERENCE
    if chunked:
        logits = min(tokens, chunk_len(tokens, shape.vocab, shape.hidden)) * shape.vocab * 4 * LOGIT_COPIES
    else:
        logits = full_logits
    optim = t.optim if t is not None else "adamw_torch"
    optimizer = 0 if optim == "sgd" else trainable * 2 if optim.endswith("8bit") else 2 * trained_bytes
    virtual = virtual_bytes(shape, method, rows, length, checkpointing)
    activations += dropout_bytes(shape, method, tokens, device) + dequant
    reference = reference_bytes(config, weights, trained_bytes)
    rest = weights + reference + trained_bytes + optimizer + activations + logits + virtual
    overhead = CPU_PROCESS if device == "cpu" else GPU_CONTEXT + int(GPU_SLACK * rest)
    return MemoryEstimate(
        device=device, tokens=tokens, longest=longest if longest is not None else length, rows=rows,
        weights=weights, gradients=trained_bytes, optimizer=optimizer, activations=activations, logits=logits,
        attention=attention if mask else 0, virtual=virtual, overhead=overhead, reference=reference)


def reference_bytes(config: RunConfig | None, weights: int, trained_bytes: int) -> int:
    """What the reference of train.stage dpo or kto adds: a copy of all `weights` with full and freeze, of the
    adapter's (`trained_bytes`) with an adapter method; nothing for the other stages."""
    if config is None or config.train.stage not in REFERENCE_STAGES:
        return 0
    return weights if config.method.name in FULL_WEIGHT_METHODS else trained_bytes


def verdict(total: int, free: int) -> str:
    """"fits", "tight" (within the estimate's accuracy of the free memory) or "will not fit"."""
    if total * (1 + ACCURACY) <= free:
        return "fits"
    if total * (1 - ACCURACY) <= free:
        return "tight"
    return "will not fit"
