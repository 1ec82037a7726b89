"""Base model and tokenizer: a hub id or a local folder, in the right dtype, optionally 4/8-bit; and the
embedding matrix grown to a tokenizer that outgrew it (training, chat and export share one way).

dtype "auto" means bfloat16 on a GPU that supports it and float32 everywhere else: bf16 matmuls
have no fast path on many CPUs (about 150x slower than fp32 on this project's machines) even where
torch reports bf16 as supported. QLoRA's compute dtype follows the same rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, PreTrainedModel

from engine.config import MethodConfig, ModelConfig
from engine.data.tokens import ensure_pad_token
from engine.jobs.failures import EngineError
from engine.model.config_json import model_config_json, safetensors_params
from engine.sentences import said

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelError(EngineError, RuntimeError):
    """A model or tokenizer that cannot be loaded; the message is one sentence for the user."""


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(requested: str = "auto") -> torch.dtype:
    if requested != "auto":
        return DTYPES[requested]
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _common_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    return {"trust_remote_code": cfg.trust_remote_code, "revision": cfg.revision}


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _explain_load_error(name: str, error: Exception) -> ModelError:
    text = str(error).splitlines()[0] if str(error) else error.__class__.__name__
    folder = Path(name).expanduser()
    local = folder.is_absolute() or name.startswith((".", "~")) or folder.exists()
    if "trust_remote_code" in str(error) or (local and _has_custom_code(folder)):
        return ModelError(said("engine.model.custom_code", name=name))
    if local and not folder.exists():
        return ModelError(said("engine.model.folder_missing", name=name))
    if local and _pickle_only(folder):
        return ModelError(
            f"Model folder {name} has only pickle weights ({_pickle_only(folder)}): PEFT Workbench loads only "
            "safetensors, since loading a pickle can run code. Convert it on a machine where you trust it with "
            f"`python -c \"from transformers import AutoModelForCausalLM as M; M.from_pretrained('{name}')"
            f".save_pretrained('{name}-safetensors')\"` (copy its tokenizer files too) and use that folder.")
    if local:
        return ModelError(said("engine.model.not_a_model", name=name, details=text))
    if "safetensors" in str(error).lower():
        return ModelError(said("engine.model.no_safetensors", name=name))
    return ModelError(said("engine.model.not_found", name=name, details=text))


def _has_custom_code(folder: Path) -> bool:
    return "auto_map" in (model_config_json(str(folder)) or {})


def _pickle_only(folder: Path) -> str | None:
    """The name of a pickle weights file in a folder that has no safetensors, else None."""
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return None
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    return pickles[0] if pickles else None


def load_tokenizer(cfg: ModelConfig):
    """The model's tokenizer with a padding token (eos, else unk, where it has none)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.name_or_path, **_common_kwargs(cfg))
    except (OSError, ValueError) as error:
        raise _explain_load_error(cfg.name_or_path, error) from error
    ensure_pad_token(tokenizer)
    tokenizer.padding_side = "right"
    return tokenizer


def quantization_config(method: MethodConfig, compute_dtype: torch.dtype) -> BitsAndBytesConfig | None:
    bits = method.effective_bits
    if bits == 4:
        if method.bnb_4bit_compute_dtype != "auto":
            compute_dtype = DTYPES[method.bnb_4bit_compute_dtype]
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=method.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=method.bnb_4bit_use_double_quant,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def load_model(cfg: ModelConfig, method: MethodConfig | None = None, *, bits: int | None = None) -> PreTrainedModel:
    """Load the base causal LM; `method` (or explicit `bits`) decides quantization."""
    dtype = pick_dtype(cfg.dtype)
    quant_method = method if method is not None else MethodConfig(name="lora", bits=bits)
    quant = quantization_config(quant_method, dtype)
    if cfg.adapter and quant is not None:
        from engine.model.start import starting_runs

        starting_runs(cfg.adapter, cfg.name_or_path, quant_method.effective_bits)  # refuses a quantized base
    kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": True, **_common_kwargs(cfg)}  # never a pickle
    if quant is not None:
        # Quantize from the checkpoint's own dtype: upcasting a 16-bit checkpoint to fp32 before quantizing
        # it would double the peak memory of loading, which is what QLoRA is chosen to save.
        kwargs.update(dtype="auto", quantization_config=quant, device_map={"": device()})
    if Path(cfg.name_or_path).expanduser().is_dir():  # a truncated weights file: one sentence naming it
        safetensors_params(Path(cfg.name_or_path).expanduser())
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        raise _explain_load_error(cfg.name_or_path, error) from error
    if quant is None:
        model.to(device())
    else:
        cast_unquantized(model, dtype)
    log.info("loaded %s (%s, %s%s)", cfg.name_or_path, model.__class__.__name__, dtype,
             f", {quant_method.effective_bits}-bit" if quant else "")
    if cfg.adapter:  # a run that starts from a finished one: its adapter merged in (engine/model/start.py)
        model = merge_start(model, cfg.adapter, cfg.name_or_path)
    return model


def merge_start(model: PreTrainedModel, folder: str, base: str) -> PreTrainedModel:
    """`model` (the base, loaded) with the adapter of every run it starts from (model.adapter) merged into it,
    in order (engine/model/start.py lists and checks them)."""
    from peft import PeftModel

    from engine.model.start import starting_runs

    for start in starting_runs(folder, base):
        grow_embeddings(model, AutoTokenizer.from_pretrained(start.adapter), {start.run.name: start.adapter},
                        log.warning)
        model = PeftModel.from_pretrained(model, str(start.adapter)).merge_and_unload(safe_merge=True)
        log.info("merged the adapter of %s (%s, %s) into the base", start.run, start.stage, start.method)
    return model


def cast_unquantized(model: PreTrainedModel, dtype: torch.dtype) -> None:
    """Bring the layers that stay in floating point (embeddings, norms, head) to `dtype`, one at a time."""
    for param in model.parameters():
        if param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)


def load_config(cfg: ModelConfig):
    """The model's config.json only (no weights), for planning on the meta device."""
    try:
        return AutoConfig.from_pretrained(cfg.name_or_path, **_common_kwargs(cfg))
    except (OSError, ValueError) as error:
        raise _explain_load_error(cfg.name_or_path, error) from error


def fit_embeddings(model: PreTrainedModel, tokenizer) -> bool:
    """Grow the embedding matrix where the tokenizer has more tokens than the model; True when it did
    (the adapter must then carry the grown embeddings)."""
    if len(tokenizer) <= model.get_input_embeddings().weight.shape[0]:
        return False
    model.resize_token_embeddings(len(tokenizer))
    log.info("resized embeddings to %d tokens to fit the tokenizer", len(tokenizer))
    return True


def grow_embeddings(model: PreTrainedModel, tokenizer, adapters: dict[str, Path], warn: Callable[[str], None]) -> None:
    """Grow a base's vocabulary to an adapter's tokenizer, as training grew it; peft then loads the trained rows
    (saved with the adapter) over the grown matrix. `adapters`: name -> folder of the adapters to load over it.

    Where an adapter does not carry them (peft skips them when it cannot tell the vocabulary grew, e.g. a hub
    base saved offline), the new rows are drawn at random: seeded, so chat and export agree, and said aloud.
    """
    added = len(tokenizer) - model.get_input_embeddings().weight.shape[0]
    if added <= 0:
        return
    torch.manual_seed(0)
    fit_embeddings(model, tokenizer)
    for name, folder in adapters.items():
        if not adapter_carries_embeddings(folder):
            warn(said("engine.log.embeddings_redrawn", added=added, name=name))


def adapter_carries_embeddings(adapter_dir: Path) -> bool:
    """Whether a saved adapter holds embedding (or output) rows, as peft writes them for a grown vocabulary."""
    from safetensors import safe_open

    weights = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights.is_file():
        return False
    with safe_open(str(weights), "pt") as f:
        return any(key.endswith(("embed_tokens.weight", "lm_head.weight")) for key in f.keys())  # noqa: SIM118
