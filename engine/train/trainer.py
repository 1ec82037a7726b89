"""The transformers Trainer as the engine uses it: arguments from RunConfig, batching, and the callback
that turns training into events (progress, metrics, stop on signal)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import (
    EarlyStoppingCallback,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput

from engine.config import METHOD_OPTIONS, PROMPT_LEARNING, RunConfig
from engine.config_best import greater_is_better
from engine.jobs import rundir
from engine.jobs.events import Metrics, Progress
from engine.jobs.failures import EngineError
from engine.jobs.faults import fault_point
from engine.jobs.lifecycle import JobFolderGoneError
from engine.model.loading import pick_dtype
from engine.sentences import said
from engine.train import kernels as liger
from engine.train import nodes, strategy, trackers, world
from engine.train.batching import Choice, Shape, choose
from engine.train.collate import REAL_TOKENS, PackingCollator, PaddingCollator
from engine.train.logits import TrainedHead, plan, trained_loss
from engine.train.throughput import Throughput


class DivergedError(EngineError):
    """Training reached a loss or gradient norm that is no finite number; the message names the step and the lever."""


def levers(config: RunConfig) -> str:
    """What to lower when a run diverges: the learning rate; first LoRA's scale where it is far above the usual."""
    rate = f"train.learning_rate (now {config.train.learning_rate:g})"
    method = config.method
    scale = method.lora_alpha / method.r
    if "lora_alpha" in METHOD_OPTIONS.get(method.name, ()) and scale > 8:
        return f"lower method.lora_alpha (now {method.lora_alpha:g}, a scale of {scale:g}) or {rate}"
    return f"lower {rate}"


def diverged(what: str, value: float, step: int, lever: str) -> DivergedError:
    return DivergedError(f"Training diverged at step {step}: the {what} is {value} (not a finite number), so no "
                         f"weights were saved: {lever} and start it again.")


class WorkbenchTrainer(Trainer):
    """Trainer that measures throughput in non-padding tokens per second of training, and stops at the first loss
    or gradient norm that is not finite (before the optimizer applies it: no non-finite weights are published)."""

    packing: bool = False
    levers: str = "lower train.learning_rate"  # build_trainer names the config's (see `levers`)
    throughput: Throughput  # shared with EventCallback, which marks the start and every step
    head: TrainedHead | None = None  # the loss over trained positions only (engine/train/logits.py); None: full
    fused: bool = False  # Liger Kernel's fused loss takes the loss (engine/train/kernels.py); head is None then

    def tokens_per_s(self) -> float:
        return self.throughput.tokens_per_s(self.state.num_input_tokens_seen)

    def steady_tokens_per_s(self) -> float | None:
        return self.throughput.steady_tokens_per_s(self.state.num_input_tokens_seen)

    def mean_loss(self, result: Any) -> float | None:
        """This attempt's mean training loss (train()'s result); where a resumed attempt had no step left to
        train (killed while saving the weights), the mean of the losses logged before it, not the Trainer's 0."""
        if self.state.global_step > self.throughput.start_step:
            return result.training_loss
        losses = [entry["loss"] for entry in self.state.log_history if "loss" in entry]
        return sum(losses) / len(losses) if losses else None

    def train_from(self, checkpoint: Path | None) -> TrainOutput:
        """train(), resuming from `checkpoint` where given. A checkpoint of the last step (a run killed while it
        saved its weights) is restored without training: the Trainer would train one step past max_steps."""
        if checkpoint is None or not finished(checkpoint):
            return self.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        self._load_from_checkpoint(str(checkpoint))
        self.state = TrainerState.load_from_json(str(checkpoint / rundir.TRAINER_STATE))
        self.throughput.begin(self.state.global_step, self.state.num_input_tokens_seen)
        return TrainOutput(self.state.global_step, 0.0, {"train_runtime": 0.0})

    def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
        """A packed batch says how many of its tokens are not padding; a padded one is counted by the Trainer."""
        if REAL_TOKENS not in inputs:
            return super()._track_num_input_tokens(inputs)  # gathered over the ranks by the Trainer
        real = inputs[REAL_TOKENS]
        if self.accelerator.num_processes > 1:  # every rank's tokens: the run's tokens/s is global
            real = self.accelerator.gather(torch.as_tensor(real, device=self.args.device).reshape(1)).sum()
        self.state.num_input_tokens_seen += int(real)

    def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        """One forward and backward; DivergedError at once where the loss is inf or nan (the Trainer would log it
        as the average of the losses before it, and train on to weights that are no numbers)."""
        loss = super().training_step(model, inputs, *args, **kwargs)
        if not bool(torch.isfinite(loss).all()):  # one sync a step, as the Trainer's own nan/inf filter makes
            raise diverged("loss", float(loss.detach().float().mean()), self.state.global_step + 1, self.levers)
        return loss

    def _get_grad_norm(self, model: Any, grad_norm: Any = None) -> Any:
        """The Trainer's gradient norm of a step (its hook between clipping and optimizer.step()); DivergedError
        where it is not finite, so the optimizer never applies such gradients."""
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        if grad_norm is not None and not math.isfinite(float(grad_norm)):
            raise diverged("gradient norm", float(grad_norm), self.state.global_step + 1, self.levers)
        return grad_norm

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """The Trainer's loss; with `head`, the head and the loss only where labels train (engine/train/logits.py).
        Evaluation asks for the loss alone (evaluate(): prediction_loss_only without compute_metrics): no logits."""
        inputs = {k: v for k, v in inputs.items() if k != REAL_TOKENS}
        if self.fused:  # the model's forward, as Liger patched it, takes the loss (skip_logits: the Trainer's)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs.pop("skip_logits", None)  # the Trainer's word to Liger's forward (use_liger_kernel): not ours
        if self.head is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        count = num_items_in_batch if self.model_accepts_loss_kwargs else None  # as the Trainer passes it on
        loss = trained_loss(model, self.head, inputs, count)
        if self.args.average_tokens_across_devices and count is not None:  # the Trainer's own scaling
            scale = self.accelerator.num_processes // self.get_tp_size()
            loss = loss * (scale if self.args.n_gpu <= 1 else self.args.n_gpu)
        return (loss, {"loss": loss}) if return_outputs else loss

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        if _internal_call:  # a checkpoint's weights: its optimizer state and trainer_state.json come next
            if output_dir and self.args.should_save:  # how it trains, for a resume in another number of processes
                world.write(Path(output_dir), world.of_trainer(self))
            fault_point("checkpoint", self.state.global_step)


def finished(checkpoint: Path) -> bool:
    """Whether a (complete) checkpoint is of the run's last step."""
    state = json.loads((checkpoint / rundir.TRAINER_STATE).read_text(encoding="utf-8"))
    return state.get("max_steps", 0) > 0 and state.get("global_step", 0) >= state["max_steps"]


def plan_batching(config: RunConfig, model: Any, trainable: int, lengths: list[int]) -> Choice:
    """Packed or padded batches, with the run log's line saying which and why. Padding-free packing needs position
    ids that restart per example, which prompt-learning methods (virtual tokens before every row) cannot have;
    `auto` packs where it is estimated to cost less (engine.train.batching)."""
    t = config.train
    if t.packing == "off" or config.method.name in PROMPT_LEARNING:
        why = said("engine.log.packing_off") if t.packing == "off" else \
            said("engine.log.virtual_tokens_first", method=config.method.name)
        return Choice(False, said("engine.log.batching_padded", why=why))
    if t.packing == "on":
        return Choice(True, said("engine.log.batching_packed_on", pack_len=pack_len(config, model)))
    if t.batch_size == 1:
        return Choice(False, said("engine.log.batching_one_row"))
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    shape = Shape(params=sum(p.numel() for p in model.parameters()), trainable=trainable, hidden=text.hidden_size,
                  layers=text.num_hidden_layers)
    return choose(lengths, t.batch_size, pack_len(config, model), shape, varlen=varlen_attention(model))


def varlen_attention(model: Any) -> bool:
    """Whether attention runs per example inside a packed row (flash-attention's variable-length kernels)."""
    return str(getattr(model.config, "_attn_implementation", "") or "").startswith("flash_attention")


def pack_len(config: RunConfig, model: Any = None) -> int | None:
    """Tokens per packed row: train.pack_len, else none with a variable-length kernel (each example attends only
    over itself), else cutoff_len (a masked row's attention grows with its length squared)."""
    if config.train.pack_len:
        return config.train.pack_len
    return None if model is not None and varlen_attention(model) else config.train.cutoff_len


def training_arguments(config: RunConfig, run: rundir.RunDir, has_eval: bool, packing: bool,
                       kind: type[TrainingArguments] = TrainingArguments, **overrides: Any) -> TrainingArguments:
    """The Trainer's arguments from the config; `kind` a subclass (TRL's DPOConfig) with `overrides` of its own."""
    t = config.train
    on_gpu = torch.cuda.is_available()
    eval_strategy = "no" if not has_eval else ("steps" if t.eval_steps else "epoch")
    arguments = dict(
        output_dir=str(run.checkpoints),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        logging_steps=t.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        save_on_each_node=nodes.save_on_each_node(),  # several nodes without a shared folder (engine/train/nodes.py)
        seed=t.seed,
        data_seed=t.seed,
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        bf16=on_gpu and pick_dtype(config.model.dtype) == torch.bfloat16,
        use_cpu=not on_gpu,
        train_sampling_strategy="random" if packing else "group_by_length",
        include_num_input_tokens_seen="all" if packing else "non_padding",
        remove_unused_columns=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **trackers.arguments(config, run),
    )
    arguments.update(strategy.arguments(config, run))  # DDP's, FSDP's or DeepSpeed's (engine/train/strategy.py)
    return kind(**{**arguments, **best_arguments(config, has_eval, eval_strategy), **overrides})


def best_arguments(config: RunConfig, has_eval: bool, eval_strategy: str) -> dict[str, Any]:
    """With a validation split, the Trainer keeps the checkpoint with the best train.metric_for_best and loads it
    at the end (engine/config_best.py): a checkpoint at every evaluation, so that each can be the one kept."""
    if not has_eval:
        return {}
    t = config.train
    return {"load_best_model_at_end": True, "metric_for_best_model": t.metric_for_best,
            "greater_is_better": greater_is_better(t.metric_for_best), "save_strategy": eval_strategy,
            "save_steps": t.eval_steps or t.save_steps}


def early_stopping(config: RunConfig, has_eval: bool) -> list[TrainerCallback]:
    """transformers' EarlyStoppingCallback where train.early_stopping_patience is set and there is a validation
    split to watch."""
    patience = config.train.early_stopping_patience
    return [EarlyStoppingCallback(early_stopping_patience=patience)] if has_eval and patience else []


class HeldWeights(TrainerCallback):
    """Logs, once the Trainer has wrapped the model (FSDP or ZeRO-3), how much of the weights this rank holds: the
    sharding measured, not assumed (the reporter writes on rank 0 only)."""

    def __init__(self, config: RunConfig, reporter: Any):
        self.config, self.reporter = config, reporter

    def on_train_begin(self, _args, _state, _control, model=None, **_kwargs):
        self.reporter.info(strategy.held_line(self.config, model))


def sharding_callbacks(config: RunConfig, reporter: Any) -> list[TrainerCallback]:
    """HeldWeights where the weights are sharded, else none."""
    return [HeldWeights(config, reporter)] if strategy.weights_sharded(config) else []


class EventCallback(TrainerCallback):
    """Writes progress and metrics events, prints one line per logging step, stops on request. `curves`: the names
    of further values the trainer logs (an objective's, engine/train/objectives.py), each written as its curve."""

    def __init__(self, reporter: Any, stop: Any, throughput: Throughput, curves: tuple[str, ...] = ()):
        self.reporter = reporter
        self.stop = stop
        self.throughput = throughput
        self.curves = curves

    def on_train_begin(self, args, state, control, **kwargs):
        self.throughput.begin(state.global_step, state.num_input_tokens_seen)

    def on_step_end(self, args, state, control, **kwargs):
        if not self.reporter.job.path.is_dir():  # deleted while it trains: nothing to save into, no one follows
            raise JobFolderGoneError(f"The run folder {self.reporter.job.path} was deleted while it trained: the "
                                     f"run ended at step {state.global_step}.")
        elapsed = self.throughput.step_done(state.num_input_tokens_seen)
        eta = self._eta(state, elapsed)
        self.reporter.events.write(Progress(step=state.global_step, total=state.max_steps,
                                            epoch=round(state.epoch or 0.0, 4), elapsed_s=round(elapsed, 2),
                                            eta_s=round(eta, 1) if eta is not None else None))
        if agreed_stop(self.stop.requested, args.device):
            self.stop.requested = True  # on every rank, so that each ends its run as stopped
            control.should_training_stop = True
            control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        """A checkpoint was written: the log says which (the run resumes from the newest complete one)."""
        checkpoint = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        self.reporter.info(said("engine.log.checkpoint_saved", checkpoint=checkpoint))

    def _eta(self, state, elapsed: float) -> float | None:
        done = state.global_step - self.throughput.start_step
        return elapsed / done * (state.max_steps - state.global_step) if done > 0 else None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            rate = self.throughput.since_last(state.num_input_tokens_seen)
            event = {"step": state.global_step, "loss": logs["loss"], "learning_rate": logs.get("learning_rate"),
                     "grad_norm": _number(logs.get("grad_norm")), "tokens_per_s": round(rate, 1),
                     "epoch": round(state.epoch or 0.0, 4)}
            event.update({name: _number(logs.get(name)) for name in self.curves})
            self.reporter.events.write(Metrics(**event))
            print(self._line(state, event), flush=True)
        if "eval_loss" in logs:
            self.reporter.events.write(Metrics(step=state.global_step, eval_loss=logs["eval_loss"]))
            print(f"step {state.global_step}/{state.max_steps}  eval_loss {logs['eval_loss']:.4f}", flush=True)

    def _line(self, state, event: dict[str, Any]) -> str:
        eta = self._eta(state, time.time() - self.throughput.began) or 0.0
        return (f"step {state.global_step}/{state.max_steps}  loss {event['loss']:.4f}  "
                f"lr {event['learning_rate']:.2e}  {event['tokens_per_s']:.0f} tok/s  eta {_clock(eta)}")


def agreed_stop(requested: bool, device: Any) -> bool:
    """Whether any rank was asked to stop, agreed by every rank after each step (one all-reduce of one number where
    several processes train), so that all stop at the same step and none waits forever for the others."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return requested
    flag = torch.tensor([1.0 if requested else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


SHARDED_HEAD = said("engine.log.loss_sharded")


def build_trainer(config: RunConfig, run: rundir.RunDir, model: Any, tokenizer: Any, train_rows: list[dict],
                  val_rows: list[dict], reporter: Any, stop: Any, packing: bool) -> WorkbenchTrainer:
    if packing:
        collator = PackingCollator(tokenizer.pad_token_id, pack_len(config, model))
    else:
        collator = PaddingCollator(tokenizer.pad_token_id)
    throughput = Throughput()
    callback = EventCallback(reporter, stop, throughput)
    kernels = liger.choose(config, model)
    trainer = WorkbenchTrainer(
        model=model,
        args=training_arguments(config, run, bool(val_rows), packing, **kernels.arguments()),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[callback, *early_stopping(config, bool(val_rows)), *sharding_callbacks(config, reporter)],
    )
    trainer.remove_callback(PrinterCallback)  # EventCallback prints the progress lines
    trackers.point_tensorboard(trainer, run)
    trainer.packing = packing
    trainer.levers = levers(config)
    trainer.throughput = throughput
    trainer.fused = kernels.fused
    trainer.head, line = (None, liger.FUSED) if kernels.fused else plan(model)
    if trainer.head is not None and strategy.weights_sharded(config):
        trainer.head, line = None, SHARDED_HEAD
    reporter.info(said("engine.log.joined", first=line, then=kernels.line))
    return trainer
