"""A model's shapes, in one place: trainable and total parameter counts of a model and a method from the model's
config.json alone (no torch, no weights), as plain Python the web process imports.

Why beside peft's own count: the engine's `plan` command (engine.model.methods.plan) builds the model on the meta
device and attaches the method with peft, which is exact for any model but takes an engine process and seconds
of importing torch, transformers and peft. The Train tab recounts on every change of the form, so for the
Llama-like decoders it knows (ARCHS) this module does peft's arithmetic itself, in microseconds;
tests/unit/test_param_count.py holds the two equal for every method on every architecture here.

- `count(config, method)`: {trainable_params, total_params, trainable_percent} as `plan` prints them, or None
  wherever the shapes cannot be derived here (another architecture, custom code, a regex or an unusual module as
  target, a freeze deeper than the model); the page then asks the cached `plan` engine process instead.
- `estimate_total(config)`: the base model's size for the model summary where no weights are at hand: exact for
  the architectures here, a generic decoder-only estimate for others.

The config.json itself is read by engine/model/config_json.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config import MethodConfig

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Arch:
    """How a model type lays out its decoder layer, where config.json may leave a value to its class default."""

    kv_heads: int | None = None  # default num_key_value_heads (None: as many as attention heads)
    head_dim: int | None = None  # default head_dim (None: hidden_size // num_attention_heads)
    qkv_bias: bool | str = False  # a bool, or the config key that says it
    o_bias: bool | str = False
    mlp_bias: bool | str = False
    qk_norm: bool = False  # an RMSNorm of head_dim on queries and on keys (Qwen3)
    ia3_targets: tuple[str, ...] = ("k_proj", "v_proj", "down_proj")  # peft's defaults for the model type


ARCHS: dict[str, Arch] = {
    "llama": Arch(qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"),
    "mistral": Arch(kv_heads=8),
    "qwen2": Arch(kv_heads=32, qkv_bias=True, ia3_targets=("q_proj", "v_proj", "down_proj")),
    "qwen3": Arch(kv_heads=32, head_dim=128, qkv_bias="attention_bias", o_bias="attention_bias", qk_norm=True,
                  ia3_targets=("q_proj", "v_proj", "down_proj")),
}
IA3_FEEDFORWARD = ("down_proj",)  # peft scales these on their input, the others on their output


@dataclass(frozen=True)
class Linear:
    name: str
    in_features: int
    out_features: int
    bias: bool

    @property
    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)


@dataclass(frozen=True)
class Decoder:
    """The parameter shapes of a Llama-like causal LM."""

    arch: Arch
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    linears: tuple[Linear, ...]  # one decoder layer's
    layer_norms: int  # parameters of one layer's norms
    tied: bool

    @property
    def layer_params(self) -> int:
        return sum(linear.params for linear in self.linears) + self.layer_norms

    @property
    def total(self) -> int:
        head = 0 if self.tied else self.vocab * self.hidden
        return self.vocab * self.hidden + self.layers * self.layer_params + self.hidden + head


def decoder(config: dict[str, Any]) -> Decoder | None:
    """The decoder's shapes from config.json, or None where it is not a Llama-like model this module knows."""
    arch = ARCHS.get(config.get("model_type", ""))
    if arch is None or config.get("auto_map") or config.get("quantization_config"):
        return None
    try:
        hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
        layers, heads, vocab = int(config["num_hidden_layers"]), int(config["num_attention_heads"]), int(
            config["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None
    kv_heads = int(config.get("num_key_value_heads", arch.kv_heads) or heads)
    head_dim = int(config.get("head_dim", arch.head_dim) or hidden // heads)

    def flag(value: bool | str) -> bool:
        return bool(config.get(value, False)) if isinstance(value, str) else value

    qkv, o, mlp = flag(arch.qkv_bias), flag(arch.o_bias), flag(arch.mlp_bias)
    linears = (
        Linear("q_proj", hidden, heads * head_dim, qkv),
        Linear("k_proj", hidden, kv_heads * head_dim, qkv),
        Linear("v_proj", hidden, kv_heads * head_dim, qkv),
        Linear("o_proj", heads * head_dim, hidden, o),
        Linear("gate_proj", hidden, inter, mlp),
        Linear("up_proj", hidden, inter, mlp),
        Linear("down_proj", inter, hidden, mlp),
    )
    norms = 2 * hidden + (2 * head_dim if arch.qk_norm else 0)
    return Decoder(arch, hidden, layers, heads, kv_heads, head_dim, vocab, linears, norms,
                   bool(config.get("tie_word_embeddings", False)))


def targeted(model: Decoder, targets: str | list[str], default: tuple[str, ...]) -> list[Linear] | None:
    """One layer's Linear modules that `targets` names ('all-linear' -> `default`); None for names this
    module cannot resolve (a regex, a module that is not one of the layer's Linear layers)."""
    names = default if targets == "all-linear" else targets
    if isinstance(names, str) or not set(names) <= set(LORA_TARGETS):
        return None
    return [linear for linear in model.linears if linear.name in names]


def _lora(model: Decoder, m: MethodConfig) -> int | None:
    linears = targeted(model, m.target_modules, LORA_TARGETS)
    if linears is None:
        return None
    magnitude = m.name == "dora"  # DoRA adds one magnitude per output feature
    per_layer = sum(m.r * (x.in_features + x.out_features) + (x.out_features if magnitude else 0) for x in linears)
    return model.layers * per_layer


def _ia3(model: Decoder, m: MethodConfig) -> int | None:
    # engine.model.methods._ia3: 'all-linear' takes peft's targets for the model type, feed-forward ones scaled on
    # their input; an explicit list is scaled on every module's output.
    linears = targeted(model, m.target_modules, model.arch.ia3_targets)
    if linears is None:
        return None
    feedforward = IA3_FEEDFORWARD if m.target_modules == "all-linear" else ()
    return model.layers * sum(x.in_features if x.name in feedforward else x.out_features for x in linears)


def _prefix(model: Decoder, m: MethodConfig) -> int:
    token_dim = model.head_dim * model.kv_heads  # peft sizes the prefix by the key/value heads (GQA)
    width = model.layers * 2 * token_dim
    if not m.prefix_projection:
        return m.num_virtual_tokens * width
    hidden = m.encoder_hidden_size
    return m.num_virtual_tokens * token_dim + (token_dim + 1) * hidden + (hidden + 1) * width


def _prompt(model: Decoder, m: MethodConfig) -> int:
    return m.num_virtual_tokens * model.hidden


def _ptuning(model: Decoder, m: MethodConfig) -> int:
    dim, hidden = model.hidden, m.encoder_hidden_size
    embedding = m.num_virtual_tokens * dim
    if m.encoder_reparameterization_type == "MLP":
        return embedding + (dim + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * dim
    # a 2-layer bidirectional LSTM, then Linear(2h, 2h) and Linear(2h, dim)
    lstm = sum(2 * (4 * hidden * (size + hidden) + 8 * hidden) for size in (dim, 2 * hidden))
    return embedding + lstm + (2 * hidden + 1) * 2 * hidden + (2 * hidden + 1) * dim


def _full(model: Decoder, _m: MethodConfig) -> int:
    return model.total


def _freeze(model: Decoder, m: MethodConfig) -> int | None:
    if m.freeze_trainable_layers > model.layers:
        return None  # the engine's plan says why, in its own words
    return m.freeze_trainable_layers * model.layer_params


ADDED = {"lora", "dora", "qlora", "ia3", "prefix", "prompt", "ptuning"}  # adapters add to the base's total
COUNTERS: dict[str, Callable[[Decoder, MethodConfig], int | None]] = {
    "lora": _lora,
    "dora": _lora,
    "qlora": _lora,  # planned as LoRA on the unquantized shapes, as engine.model.methods.plan does
    "ia3": _ia3,
    "prefix": _prefix,
    "prompt": _prompt,
    "ptuning": _ptuning,
    "full": _full,
    "freeze": _freeze,
}


def estimate_total(config: dict[str, Any]) -> int | None:
    """The base model's parameter count from config.json: exact where `decoder` knows the architecture, else
    a generic decoder-only transformer's (attention with its key/value heads, a gated MLP, two norms a layer);
    None where config.json lacks the sizes."""
    known = decoder(config)
    if known is not None:
        return known.total
    try:
        h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    except KeyError:
        return None
    inter = config.get("intermediate_size", 4 * h)
    heads = config.get("num_attention_heads", 1)
    kv = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim", h // heads)
    attn = 2 * h * heads * head_dim + 2 * h * kv * head_dim
    embed = vocab * h * (1 if config.get("tie_word_embeddings", False) else 2)
    return embed + layers * (attn + 3 * h * inter + 2 * h) + h


def count(config: dict[str, Any], method: MethodConfig) -> dict[str, float] | None:
    """{trainable_params, total_params, trainable_percent} as `python -m engine plan` prints them, or None."""
    model = decoder(config)
    if model is None:
        return None
    trainable = COUNTERS[method.name](model, method)
    if trainable is None:
        return None
    total = model.total + (trainable if method.name in ADDED else 0)
    return {"trainable_params": trainable, "total_params": total, "trainable_percent": 100 * trainable / total}
