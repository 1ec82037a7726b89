"""DPO through TRL's DPOTrainer, as the engine's other training runs: the same arguments, events and throughput.

The rows arrive tokenized by engine/data/preference.py (the engine's chat templating and SFT masking, see its
docstring), so `PairTrainer` returns them from TRL's dataset preparation untouched; TRL's
DataCollatorForPreference pads them and puts each batch's chosen and rejected sequences side by side.

The reference model: the method's PeftModel is handed over with `ref_model=None`, and TRL computes the
reference log-probabilities with the adapter disabled, so no second copy of the base's weights is loaded
(full and freeze, which would need one, are refused by engine/config_stage.py for now).
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from transformers import PrinterCallback
from trl import DPOConfig, DPOTrainer

from engine.config import RunConfig
from engine.jobs import rundir
from engine.train import trackers
from engine.train.throughput import Throughput
from engine.train.trainer import EventCallback, WorkbenchTrainer, levers, training_arguments


class PairTrainer(WorkbenchTrainer, DPOTrainer):
    """DPOTrainer with the engine's throughput, resume and checkpoint faults (WorkbenchTrainer's methods come
    first; each calls on to DPOTrainer's through super())."""

    def _prepare_dataset(self, dataset: Dataset, *_args: Any, **_kwargs: Any) -> Dataset:
        """The rows are tokenized already (prompt_ids, chosen_ids, rejected_ids): nothing to prepare."""
        return dataset


def dpo_arguments(config: RunConfig, run: rundir.RunDir, has_eval: bool) -> DPOConfig:
    """The run's TrainingArguments as a DPOConfig with the preference options under TRL's names. rpo_alpha is
    TRL's sft loss added to the chosen reply with that weight."""
    t = config.train
    losses, weights = [t.loss_type], None
    if t.rpo_alpha:
        losses, weights = [t.loss_type, "sft"], [1.0, t.rpo_alpha]
    return training_arguments(
        config, run, has_eval, packing=False, kind=DPOConfig,
        beta=t.beta, loss_type=losses, loss_weights=weights, label_smoothing=t.label_smoothing,
        max_length=None,  # engine/data/preference.py cut every pair at cutoff_len already
        train_sampling_strategy="random", include_num_input_tokens_seen="non_padding",
        precompute_ref_log_probs=False,
    )


def build_dpo_trainer(config: RunConfig, run: rundir.RunDir, model: Any, tokenizer: Any, train_rows: list[dict],
                      val_rows: list[dict], reporter: Any, stop: Any, _packing: bool, curves: tuple[str, ...] = (),
                      ) -> PairTrainer:
    """The DPO trainer of a run, writing `curves` (names DPOTrainer logs) as the run's curves; `_packing` is
    always False (pairs are padded, never packed)."""
    throughput = Throughput()
    callback = EventCallback(reporter, stop, throughput, curves=curves)
    trainer = PairTrainer(
        model=model,
        ref_model=None,
        args=dpo_arguments(config, run, bool(val_rows)),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)
    trackers.point_tensorboard(trainer, run)
    trainer.packing = False
    trainer.levers = levers(config)
    trainer.throughput = throughput
    return trainer
