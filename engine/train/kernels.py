"""Liger Kernel on CUDA (`train.kernels`, engine/config_kernels.py): which of its kernels a run uses, and why.

Liger Kernel's Triton kernels replace a model's RMSNorm, rotary embedding and SwiGLU, and its fused linear
cross-entropy takes the loss from the last hidden states and the head's weight a chunk at a time (no batch x
length x vocabulary logits, as engine/train/logits.py does on the CPU). They are applied the way transformers'
Trainer applies them (TrainingArguments.use_liger_kernel, liger_kernel_config: liger_kernel.transformers.
_apply_liger_kernel_to_instance on the model under peft's wrapper, when training starts); the engine only decides:

- where: CUDA, and liger-kernel importable (imported here only on CUDA; an optional install, requirements-gpu.txt),
  for a model type Liger has kernels for (its MODEL_TYPE_TO_APPLY_LIGER_FN), and not for the preference stages
  (TRL's own loss); `auto` falls back to the chunked loss with the reason in the run log, `liger` refuses;
- which loss: Liger's fused loss only where it takes the model's own loss. It multiplies the hidden states by
  `lm_head.weight` alone (liger_kernel/transformers/model/*.py, lce_forward), so a head with an adapter (a LoRA
  on lm_head, peft's trainable copy) or a bias keeps the engine's chunked loss, which calls the head as a module;
  so does a family whose logits Liger's fused loss does not post-process (Granite's scaling: Liger's apply
  function refuses it; Cohere has no Liger kernels). Liger's plain cross-entropy is never turned on: it replaces
  torch.nn.functional.cross_entropy for the whole process. With the fused loss the Trainer's compute_loss runs
  (the model's forward, patched, takes the loss; the Trainer asks it to skip the logits in evaluation too), and
  engine/train/logits.py is not used: the two never both replace the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.config import ConfigError, RunConfig
from engine.config_kernels import INSTALL, kernel_problems
from engine.config_stage import PREFERENCE_STAGES
from engine.jobs import rundir
from engine.jobs.failures import EngineError
from engine.sentences import said
from engine.train.logits import FAMILIES

# Model types whose forward, as Liger's lce_forward replaces it (liger-kernel 0.8.5), takes the loss the model's
# own forward takes: the head's weight with no post-processing, or Gemma-2/3's final soft-capping, which Liger
# passes on. Granite (its logits are divided by logits_scaling) and Cohere (no Liger kernels) are left out.
FUSED_FAMILIES = frozenset(FAMILIES) - {"granite", "cohere"}
FUSED = said("engine.log.loss_fused")


class KernelsError(EngineError):
    """train.kernels is liger and the run cannot have Liger Kernel; the message says why and what to set."""


@dataclass(frozen=True)
class KernelChoice:
    """Whether Liger Kernel's kernels are applied, whether its fused loss takes the loss, the run log's line."""

    liger: bool
    fused: bool
    line: str

    def arguments(self) -> dict[str, Any]:
        """TrainingArguments' own switches (the Trainer applies the kernels when training starts)."""
        if not self.liger:
            return {}
        return {"use_liger_kernel": True,
                "liger_kernel_config": {"cross_entropy": False, "fused_linear_cross_entropy": self.fused}}


def check(config: RunConfig, run: rundir.RunDir) -> None:
    """Before anything is loaded: `liger` without CUDA (KernelsError), or without the package (ConfigError; a config
    read back from a run folder has not been through RunConfig.problems())."""
    if config.train.kernels == "liger" and not torch.cuda.is_available():
        raise KernelsError("train.kernels is liger, which runs on CUDA only, and this machine has no CUDA device: "
                           "set train.kernels to auto or none.")
    issues = kernel_problems(config.train.kernels, config.train.stage)
    if issues:
        raise ConfigError(issues, str(run.config))


def liger_families() -> tuple[frozenset[str], str | None]:
    """(the model types Liger Kernel has kernels for, None) or (nothing, why it cannot be imported)."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError as error:  # not installed, or Triton missing or broken: said in the run log or refused
        return frozenset(), said("engine.log.liger_no_import", error=str(error), install=INSTALL)
    return frozenset(MODEL_TYPE_TO_APPLY_LIGER_FN), None


def choose(config: RunConfig, model: Any) -> KernelChoice:
    """The kernels of this run (see the module docstring); KernelsError where `liger` cannot be had."""
    setting, stage = config.train.kernels, config.train.stage
    if setting == "none":
        return KernelChoice(False, False, said("engine.log.kernels_none"))
    if stage in PREFERENCE_STAGES:  # `liger` is refused for them by kernel_problems
        return KernelChoice(False, False, said("engine.log.kernels_trl", stage=stage))
    if not torch.cuda.is_available():  # `liger` was refused by check()
        return KernelChoice(False, False, said("engine.log.kernels_no_cuda"))
    families, problem = liger_families()
    return select(setting, model, families, problem)


def select(setting: str, model: Any, families: frozenset[str], problem: str | None = None) -> KernelChoice:
    """The choice on CUDA, given the model types Liger has kernels for (or why it cannot be imported)."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    kind = getattr(causal.config, "model_type", "?")
    why = problem or (None if kind in families else said("engine.log.liger_no_family", kind=repr(kind)))
    if why is not None:
        if setting == "liger":
            raise KernelsError(f"train.kernels is liger but {why}: set train.kernels to auto or none.")
        return KernelChoice(False, False, said("engine.log.kernels_without", why=why))
    kept = unfused(model, causal, kind)
    if kept is None:
        return KernelChoice(True, True, said("engine.log.kernels_liger", kind=kind, setting=setting))
    return KernelChoice(True, False, said("engine.log.kernels_unfused", kind=kind, setting=setting, kept=kept))


def unfused(model: Any, causal: Any, kind: str) -> str | None:
    """Why Liger's fused loss would not take this model's loss, or None where it does."""
    head = causal.get_output_embeddings()
    peft_type = str(getattr(getattr(model, "active_peft_config", None), "peft_type", "") or "")
    if kind not in FUSED_FAMILIES:
        return said("engine.log.unfused_post", kind=kind)
    if type(head) is not torch.nn.Linear or head.bias is not None:
        return said("engine.log.unfused_head")
    if "CPT" in peft_type or causal.loss_function.__name__ != "ForCausalLMLoss":
        return said("engine.log.unfused_loss")
    return None
