"""`train.kernels`: whether a run on CUDA uses Liger Kernel's Triton kernels, as a config field.

Plain Python (pydantic, importlib): engine.config builds TrainConfig on `KernelOptions`, so the key sits under
`train:`. `auto` (the default) uses Liger Kernel where the run is on CUDA and the package is installed, and the
engine's own chunked loss (engine/train/logits.py) elsewhere; `liger` insists on Liger Kernel and refuses a run
that cannot have it; `none` never uses it. Which kernels a run gets, and why, is engine/train/kernels.py's.

liger-kernel is an optional install (requirements-gpu.txt): it pulls Triton, a wheel of about 270 MB that the
CUDA builds of torch already bring and the CPU builds do not need. The package is looked for here without being
imported (find_spec): the web process never imports it, nor torch.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.config_stage import PREFERENCE_STAGES

Kernels = Literal["auto", "liger", "none"]
PACKAGE = "liger_kernel"  # what find_spec looks for; pip installs it as liger-kernel
INSTALL = "pip install -r requirements-gpu.txt"


class KernelOptions(BaseModel):
    """train.kernels, inherited by engine.config.TrainConfig."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    kernels: Kernels = Field("auto", description=(
        "Fused GPU kernels: auto uses Liger Kernel's (its fused linear cross-entropy, RMSNorm, RoPE, SwiGLU) on "
        "CUDA where it is installed, else the engine's chunked loss; liger insists on them; none never uses them."))


def kernel_problems(kernels: str, stage: str) -> list[str]:
    """One sentence per reason `train.kernels: liger` cannot be had, found without torch (CUDA is the engine's
    to check, engine/train/kernels.py)."""
    if kernels != "liger":
        return []
    if stage in PREFERENCE_STAGES:
        return [f"train.kernels is liger, which the {stage} stage does not use (it keeps TRL's own loss): set "
                "train.kernels to auto or none."]
    if find_spec(PACKAGE) is None:
        return [f"train.kernels is liger but liger-kernel is not installed: {INSTALL} on a machine with CUDA, or "
                "set train.kernels to auto or none."]
    return []
