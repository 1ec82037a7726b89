"""What an export is when nobody says otherwise, the same for the page's Export tab and `launch.py export`: its dtype
and its job's folder name (WORKSPACE/exports/NAME). Plain Python: the web process imports it, and tells it about
the GPU from nvidia-smi, where the engine asks torch.
"""

from __future__ import annotations

from engine.config import PROMPT_LEARNING


def default_export_dtype(gpu_bf16: bool | None) -> str:
    """The export's dtype where none is chosen, for the machine that exports: `gpu_bf16` None means no GPU (float32:
    a merge without rounding, and 16-bit matmuls are slow on a CPU, so the model a CPU user loads next runs fast),
    True a GPU with bfloat16 (bfloat16: half the size, float32's range), False one without (float16)."""
    if gpu_bf16 is None:
        return "float32"
    return "bfloat16" if gpu_bf16 else "float16"


def export_name(run_name: str, method: str | None, dtype: str) -> str:
    """The export job's folder name: RUN-DTYPE, or RUN-adapter for prefix, prompt and P-tuning, whose export is the
    adapter as trained (no dtype applies)."""
    return f"{run_name}-{'adapter' if method in PROMPT_LEARNING else dtype}"
