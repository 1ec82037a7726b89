"""bitsandbytes is imported only by runs that use it.

peft imports bitsandbytes whenever it is installed, and bitsandbytes imports torch's compiler stack (torch._dynamo,
torch._inductor) on import: about a second of every training process's start on this project's 2-core machines,
for runs that never quantize (`python -X importtime launch.py train CONFIG`). A training process whose run needs
no bitsandbytes marks it absent before transformers and peft are imported (`sys.modules[name] = None`, Python's own
way to make an import fail); they then treat it as not installed.

Only for a whole process that trains one config (`launch.py train`): a process that trains several configs, as the
test suite does, must not mark it, or a later QLoRA run in it could not import it.
"""

from __future__ import annotations

import sys

from engine.config import RunConfig
from engine.model.config_json import model_config_json

BITSANDBYTES = "bitsandbytes"
PLAIN_OPTIMIZERS = ("adamw_torch", "sgd")


def uses_bitsandbytes(config: RunConfig) -> bool:
    """A quantized base (QLoRA, or LoRA/DoRA with `bits`), an 8-bit or paged optimizer, or a base model saved quantized
    by bitsandbytes (or one whose config.json cannot be read here: a hub id not in the local cache)."""
    if config.method.effective_bits or config.train.optim not in PLAIN_OPTIMIZERS:
        return True
    model_config = model_config_json(config.model.name_or_path, config.model.revision)
    if model_config is None:
        return True
    quantization = model_config.get("quantization_config") or {}
    return quantization.get("quant_method") == BITSANDBYTES or "load_in_4bit" in quantization


def skip_bitsandbytes_unless_used(config: RunConfig) -> bool:
    """Mark bitsandbytes absent in this process where `config` does not use it and nothing imported it yet;
    returns whether it was marked."""
    if BITSANDBYTES in sys.modules or uses_bitsandbytes(config):
        return False
    sys.modules[BITSANDBYTES] = None  # type: ignore[assignment]
    return True
