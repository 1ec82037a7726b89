"""`model.adapter: RUN_DIR`: a run that starts from a finished run of the same base (an SFT run before DPO).

The starting run's adapter is merged into the base as the model loads (engine.model.loading's `merge_start`,
called by its load_model, on the runs this module lists and checks), so every place that loads a run's base
(training, export, its verification, chat) gets the same starting point without code of its own. A preference
stage then trains a fresh adapter over that merged model, and its reference (DPO, KTO: the model with the fresh
adapter disabled) is the base with the SFT adapter merged: what the run started from, as the objective asks. A
starting run that itself started from another is merged after its own start, so chains (SFT -> DPO -> KTO) load
in order.

Checked before anything is loaded (`starting_runs`), each problem one sentence: the folder holds a finished
adapter, its config.yaml names the same base, and its method can be merged (not prompt learning). A quantized
base (qlora, bits) cannot take a merge: refused too, for now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.jobs.failures import EngineError

UNMERGEABLE = ("prefix", "prompt", "ptuning")  # virtual tokens, not a change of the weights


class StartError(EngineError):
    """A model.adapter folder that cannot be the starting point of a run; the message says what to change."""


@dataclass(frozen=True)
class Start:
    """One finished run a model starts from: its folder, adapter and what it was (for the record and the card)."""

    run: Path
    adapter: Path
    stage: str
    method: str
    data: str

    def record(self) -> dict[str, str]:
        return {"run": str(self.run), "stage": self.stage, "method": self.method, "data": self.data}


def starting_runs(folder: str | None, base: str, bits: int | None = None) -> list[Start]:
    """The runs to merge into `base`, first to last (the given folder's own starting runs before it); [] without
    model.adapter. StartError naming the folder and what to change where one cannot be merged."""
    if not folder:
        return []
    from engine.config import load_config

    run = Path(folder).expanduser().resolve()
    where = f"model.adapter {folder}"
    if bits:
        raise StartError(f"{where}: a {bits}-bit base cannot take the starting adapter merged into it; train with "
                         "lora, dora or ia3 (not qlora or bits), or remove model.adapter.")
    if not (run / "config.yaml").is_file():
        raise StartError(f"{where} is no run folder (it has no config.yaml): give the folder of a finished run.")
    config = load_config(run / "config.yaml")
    if config.method.name in UNMERGEABLE:
        raise StartError(f"{where} trained {config.method.name}, whose virtual tokens cannot be merged into the "
                         "base: start from a lora, dora or ia3 run.")
    if not (run / "adapter" / "adapter_config.json").is_file():
        raise StartError(f"{where} holds no finished adapter (adapter/adapter_config.json): give a run trained with "
                         "lora, dora or ia3 that has completed.")
    if config.model.name_or_path != base:
        raise StartError(f"{where} was trained on {config.model.name_or_path}, not on {base}: set "
                         "model.name_or_path to that base, or start from a run of this one.")
    before = starting_runs(config.model.adapter, base)
    return [*before, Start(run, run / "adapter", config.train.stage, config.method.name, config.data.name)]

