"""Resuming a run with another number of processes than wrote its checkpoint.

Every checkpoint says how it was trained, in `checkpoint-N/world.json` (written by rank 0 with the weights, before
the Trainer writes trainer_state.json, the file that makes a checkpoint complete): processes, rows per process,
accumulation steps, the strategy and the Trainer's sampler. What may change on resume:

- DDP (or one process) to DDP (or one process): allowed where the global batch (processes x rows x accumulation
  steps) stays the same. The adapter or weights, the optimizer and the scheduler are the same in every DDP process
  (rank 0 saved them once), and trainer_state.json counts optimizer steps. The Trainer continues an epoch by
  skipping `step x accumulation` batches of each process; with the same global batch that is the same rows, since
  the order is one shuffle of all rows (seeded alike in every process: accelerate's seedable sampler) that the
  processes take in turns. Length-grouped batches (padding) are ordered by each process's own batch size, so a
  checkpoint in the middle of one of their epochs is refused (one at the end of an epoch is not). The random
  states are per process (rng_state.pth for one, rng_state_N.pth for several): a process whose file the checkpoint
  lacks starts its random state (dropout masks) from the seed instead (the Trainer logs that it found none).
- FSDP or DeepSpeed ZeRO, on either side: refused. Their optimizer states (and FSDP's, ZeRO-3's weights) are split
  per process in the checkpoint.
- A checkpoint without world.json (written before it existed): refused, as before, unless the number of processes
  that wrote its random states (engine/train/launch.py) is the one asked for.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine import sentences
from engine.config import ConfigError, RunConfig
from engine.jobs import rundir
from engine.train import launch, strategy

WORLD_JSON = "world.json"
LENGTH_GROUPED = "group_by_length"


@dataclass(frozen=True)
class World:
    """How a run trains: `processes` (the world size), `batch_size` rows per process and step of accumulation,
    `accumulation` steps per optimizer step, `strategy` (ddp for DDP and one process, fsdp, deepspeed, or auto where
    not settled yet), `sampler` (the Trainer's train_sampling_strategy; "" where not known yet)."""

    processes: int
    batch_size: int
    accumulation: int
    strategy: str
    sampler: str = ""

    @property
    def global_batch(self) -> int:
        return self.processes * self.batch_size * self.accumulation

    def parts(self) -> str:
        return f"{self.processes} x {self.batch_size} x {self.accumulation}"


def of_trainer(trainer: Any) -> World:
    args = trainer.args
    strategy = "fsdp" if trainer.is_fsdp_enabled else "deepspeed" if trainer.is_deepspeed_enabled else "ddp"
    return World(args.world_size, args.per_device_train_batch_size, args.gradient_accumulation_steps, strategy,
                 args.train_sampling_strategy)


def of_config(config: RunConfig, sampler: str = "") -> World:
    d, t = config.distributed, config.train
    return World(d.world_size, t.batch_size, t.gradient_accumulation_steps, d.strategy, sampler)


def write(checkpoint: Path, world: World) -> None:
    rundir.write_json_atomic(checkpoint / WORLD_JSON, asdict(world))


def read(checkpoint: Path) -> World | None:
    """The world a checkpoint was written by; None where it says none (older, or not readable)."""
    try:
        return World(**json.loads((checkpoint / WORLD_JSON).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def position(step: int, rows: int, global_batch: int) -> tuple[int, int, int]:
    """(epoch, first row, steps an epoch), counted from 1, where training continues after `step` optimizer steps
    over `rows` rows in batches of `global_batch` (the Trainer's last batch of an epoch may be short)."""
    per_epoch = max(math.ceil(rows / global_batch), 1)
    return step // per_epoch + 1, (step % per_epoch) * global_batch + 1, per_epoch


def problem(checkpoint: Path, config: RunConfig, rows: int | None = None, sampler: str = "") -> str | None:
    """The sentence refusing to resume `checkpoint` with this config's processes, else None. `rows` and `sampler`
    (the run's train rows and the Trainer's sampler, known once its data and batching are) also check the data
    order of length-grouped batches."""
    written, wanted = read(checkpoint), of_config(config, sampler)
    if written is None:
        return launch.resume_problem(checkpoint, config)
    if written.processes == wanted.processes:
        return None
    same = (f"resume it with {written.processes} process(es) (distributed.nproc_per_node times "
            "distributed.nnodes)")
    head = f"{checkpoint.name} was written by {written.processes} process(es) and this run asks for {wanted.processes}"
    for world, whose in ((written, "its"), (wanted, "this run's")):
        if world.strategy in strategy.SHARDED:
            return (f"{head}, but {whose} strategy {strategy.NAMES[world.strategy]} keeps optimizer states split per "
                    f"process in checkpoints: {same}.")
    if written.global_batch != wanted.global_batch:
        return (f"{head} with a global batch of {wanted.global_batch} rows ({wanted.parts()}: processes x "
                f"train.batch_size x train.gradient_accumulation_steps) where it trained with {written.global_batch} "
                f"({written.parts()}): {keep_batch(written.global_batch, wanted)}, so that training continues where "
                f"it stopped in the data; or {same}.")
    lengths = LENGTH_GROUPED in (written.sampler, wanted.sampler)
    if lengths and rows is not None and position(step_of(checkpoint), rows, written.global_batch)[1] > 1:
        return (f"{head}, but it stopped in the middle of an epoch of length-grouped batches, whose order depends on "
                f"each process's batch size: {same}, or resume from a checkpoint at the end of an epoch.")
    return None


def keep_batch(global_batch: int, wanted: World) -> str:
    """What to set so that `wanted` trains with `global_batch` rows a step."""
    rows = wanted.processes * wanted.accumulation
    if global_batch % rows == 0:
        return f"set train.batch_size to {global_batch // rows}"
    steps = wanted.processes * wanted.batch_size
    if global_batch % steps == 0:
        return f"set train.gradient_accumulation_steps to {global_batch // steps}"
    return f"make processes x train.batch_size x train.gradient_accumulation_steps {global_batch}"


def step_of(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / rundir.TRAINER_STATE).read_text(encoding="utf-8"))["global_step"])


def resumed(checkpoint: Path, config: RunConfig, rows: int, sampler: str) -> str | None:
    """The run log's line where `checkpoint` resumes with another number of processes (what changed, and where in
    the data training continues); None for the same number. ConfigError with the sentence where it cannot."""
    if (said := problem(checkpoint, config, rows, sampler)) is not None:
        raise ConfigError([said])
    written, wanted = read(checkpoint), of_config(config, sampler)
    if written is None or written.processes == wanted.processes:
        return None
    step = step_of(checkpoint)
    epoch, row, per_epoch = position(step, rows, wanted.global_batch)
    grouped = LENGTH_GROUPED in (written.sampler, sampler)
    order = sentences.said("engine.log.order_grouped" if grouped else "engine.log.order_shuffled")
    return sentences.said("engine.log.resumed_world", checkpoint=checkpoint.name, written=written.processes,
                          wanted=wanted.processes, batch=wanted.global_batch, before=written.parts(),
                          now=wanted.parts(), step=step + 1, row=row, epoch=epoch, per_epoch=per_epoch, order=order)
