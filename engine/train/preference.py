"""The preference stages through TRL's trainers, as the engine's other training runs: the same arguments, events
and throughput. dpo: DPOTrainer; orpo: ORPOTrainer; simpo: CPOTrainer with loss_type="simpo" and cpo_alpha=0
(SimPO is CPO's loss without its SFT term); kto: KTOTrainer.

The rows arrive tokenized by engine/data/preference.py and engine/data/unpaired.py (the engine's chat templating
and SFT masking, see their docstrings), so no trainer here applies a template or tokenizes:
- DPO and KTO prepare their datasets in `_prepare_dataset`, which returns the rows untouched (`prompt_ids`,
  `chosen_ids` / `rejected_ids`, or `completion_ids` and `label`: what their collators read); KTO's mismatched
  completions for its KL estimate are added as TRL adds them (each completion moved one place within its batch).
- ORPO and CPO (trl.experimental) map their datasets through `tokenize_row` in their constructors: the rows are
  given in the shape that method returns (`chosen_input_ids`, `chosen_labels` with the prompt at -100, ...), built
  from the same ids by `row_for_odds`, and `tokenize_row` returns nothing new (TRL's two other maps, extracting a
  prompt and applying a template, find none of their columns and leave the rows as they are).

The reference model of DPO and KTO: the method's PeftModel is handed over with `ref_model=None`; TRL 1.16 copies
its adapter, as it is before the first step, into a frozen "ref" adapter and computes the reference log-probabilities
through it. A fresh adapter changes nothing at its start (LoRA's B is zero, IA3's scales one, DoRA's magnitudes the
weights' norms), so the reference is the model the run started from (the base, or the base with model.adapter's run
merged), and the only copy is of the adapter's weights, never of the base's (recipe.save_weights does not save the
"ref" copy). With full and freeze there is no adapter to disable: the reference is a frozen copy of the whole model
as it starts (`frozen_reference`: the base, or the base with model.adapter's run merged, in the dtype it trains
in), handed to TRL as `ref_model` (left None, TRL would load the base again from its path, without the merged
start), and the pre-flight memory check counts it (engine/estimate/memory.py). ORPO and SimPO have no reference.
"""

from __future__ import annotations

import copy
from typing import Any

from datasets import Dataset
from transformers import PrinterCallback, TrainingArguments
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer
from trl.experimental.cpo import CPOConfig, CPOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

from engine.config import RunConfig
from engine.config_stage import REFERENCE_STAGES
from engine.data.pipeline import IGNORE_INDEX
from engine.jobs import rundir
from engine.train import trackers
from engine.train.throughput import Throughput
from engine.train.trainer import (
    EventCallback,
    WorkbenchTrainer,
    early_stopping,
    levers,
    sharding_callbacks,
    training_arguments,
)


class PairTrainer(WorkbenchTrainer, DPOTrainer):
    """DPOTrainer with the engine's throughput, resume and checkpoint faults (WorkbenchTrainer's methods come
    first; each calls on to DPOTrainer's through super())."""

    def _prepare_dataset(self, dataset: Dataset, *_args: Any, **_kwargs: Any) -> Dataset:
        """The rows are tokenized already (prompt_ids, chosen_ids, rejected_ids): nothing to prepare."""
        return dataset


class UnpairedTrainer(WorkbenchTrainer, KTOTrainer):
    """KTOTrainer on rows tokenized already (prompt_ids, completion_ids, label)."""

    def _prepare_dataset(self, dataset: Dataset, _processing_class: Any, args: KTOConfig, *_args: Any) -> Dataset:
        """The rows as they are, with TRL's mismatched completion of each row (the previous one of its batch, the
        batch's last for its first) where the loss estimates the KL term."""
        if not self.calculate_KL:
            return dataset

        def shifted(batch: dict) -> dict:
            return {"KL_completion_ids": [batch["completion_ids"][-1], *batch["completion_ids"][:-1]]}

        return dataset.map(shifted, batched=True, batch_size=args.per_device_train_batch_size)


class _Tokenized:
    """ORPOTrainer / CPOTrainer on rows already in the shape their tokenize_row returns."""

    @staticmethod
    def tokenize_row(_feature: dict, _model: Any = None) -> dict:  # a plain function: datasets hashes it cheaply
        return {}

    def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
        """Their batches hold no input_ids: the non-padding tokens are those of the chosen and rejected sequences."""
        if self.args.include_num_input_tokens_seen != "no":
            seen = inputs["chosen_attention_mask"].sum() + inputs["rejected_attention_mask"].sum()
            self.state.num_input_tokens_seen += int(self.accelerator.gather(seen).sum())


class OddsRatioTrainer(_Tokenized, WorkbenchTrainer, ORPOTrainer):
    """ORPOTrainer (the chosen reply's SFT loss plus beta times the log odds ratio of chosen over rejected)."""


class SimpoTrainer(_Tokenized, WorkbenchTrainer, CPOTrainer):
    """CPOTrainer with loss_type="simpo": length-normalised rewards, a target margin, no reference."""


def row_for_odds(row: dict) -> dict:
    """A tokenized pair in the columns ORPOTrainer's and CPOTrainer's tokenize_row write (prompt at -100)."""
    prompt = row["prompt_ids"]
    out = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side in ("chosen", "rejected"):
        reply = row[f"{side}_ids"]
        out |= {f"{side}_input_ids": prompt + reply, f"{side}_attention_mask": [1] * (len(prompt) + len(reply)),
                f"{side}_labels": [IGNORE_INDEX] * len(prompt) + reply}
    return out


def stage_arguments(config: RunConfig, run: rundir.RunDir, has_eval: bool) -> TrainingArguments:
    """The run's TrainingArguments as the stage's TRL config, with its options under TRL's names. DPO's rpo_alpha
    is TRL's sft loss added to the chosen reply with that weight."""
    t = config.train
    common = dict(beta=t.beta, train_sampling_strategy="random", include_num_input_tokens_seen="non_padding")
    if t.stage == "kto":  # its KL estimate pairs each row with its batch neighbours: the order must hold
        return training_arguments(config, run, has_eval, packing=False, kind=KTOConfig, **{
            **common, "train_sampling_strategy": "sequential"}, desirable_weight=t.desirable_weight,
            undesirable_weight=t.undesirable_weight, max_length=None, precompute_ref_log_probs=False)
    if t.stage == "orpo":
        return training_arguments(config, run, has_eval, packing=False, kind=ORPOConfig, **common,
                                  max_length=t.cutoff_len)
    if t.stage == "simpo":
        return training_arguments(config, run, has_eval, packing=False, kind=CPOConfig, **common,
                                  loss_type="simpo", cpo_alpha=0.0, simpo_gamma=t.simpo_gamma,
                                  max_length=t.cutoff_len)
    losses, weights = [t.loss_type], None
    if t.rpo_alpha:
        losses, weights = [t.loss_type, "sft"], [1.0, t.rpo_alpha]
    return training_arguments(
        config, run, has_eval, packing=False, kind=DPOConfig, **common,
        loss_type=losses, loss_weights=weights, label_smoothing=t.label_smoothing,
        max_length=None,  # engine/data/preference.py cut every pair at cutoff_len already
        precompute_ref_log_probs=False,
    )


def frozen_reference(model: Any) -> Any:
    """None for a PeftModel (TRL's "ref" adapter copy is its reference); else a copy of `model` as it is now, frozen
    and in eval mode: full's and freeze's reference."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return None
    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


TRAINERS = {"dpo": PairTrainer, "kto": UnpairedTrainer, "orpo": OddsRatioTrainer, "simpo": SimpoTrainer}


def build_preference_trainer(config: RunConfig, run: rundir.RunDir, model: Any, tokenizer: Any,
                             train_rows: list[dict], val_rows: list[dict], reporter: Any, stop: Any, _packing: bool,
                             curves: tuple[str, ...] = ()) -> WorkbenchTrainer:
    """The trainer of a preference run (train.stage), writing `curves` (names its TRL trainer logs) as the run's
    curves; `_packing` is always False (preference rows are padded, never packed)."""
    stage = config.train.stage
    if stage in ("orpo", "simpo"):
        train_rows, val_rows = [row_for_odds(r) for r in train_rows], [row_for_odds(r) for r in val_rows]
    throughput = Throughput()
    callback = EventCallback(reporter, stop, throughput, curves=curves)
    extra = {"ref_model": frozen_reference(model)} if stage in REFERENCE_STAGES else {}
    trainer = TRAINERS[stage](
        model=model,
        args=stage_arguments(config, run, bool(val_rows)),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        processing_class=tokenizer,
        callbacks=[callback, *early_stopping(config, bool(val_rows)), *sharding_callbacks(config, reporter)],
        **extra,
    )
    trainer.remove_callback(PrinterCallback)
    trackers.point_tensorboard(trainer, run)
    trainer.packing = False
    trainer.levers = levers(config)
    trainer.throughput = throughput
    return trainer

