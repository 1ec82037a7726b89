"""How a run of several processes shares the work, told to the Trainer: DDP, FSDP or DeepSpeed ZeRO.

Everything goes through the Trainer's own integrations (accelerate underneath); this module writes no distribution
of its own. `choose` settles `distributed.strategy: auto` (DDP for the adapter methods; for full and freeze, DDP
where one step fits one device by engine/estimate, else ZeRO-3 where deepspeed is installed, else FSDP) and says
why in one line; `arguments` are the TrainingArguments of the strategy chosen:

- ddp: `ddp_find_unused_parameters=False` for the adapter methods (every trainable weight takes part in every step,
  so DDP need not search the graph for unused ones after each backward pass, which costs speed).
- fsdp: `fsdp=True` and `fsdp_config` (FSDP2, full sharding, `cpu_offload` from distributed.fsdp_offload, a full
  state dict in checkpoints, FSDP's own activation checkpointing in place of the Trainer's).
- deepspeed: a DeepSpeed config written to RUN/deepspeed.json (ZeRO stage 2 or 3, offload to the CPU), passed as
  `deepspeed=` that path; its "auto" values are filled by transformers from the other arguments.

A sharded model's weights are whole on no rank: `full_state_dict` gathers them (a collective every rank calls)
before rank 0 saves the adapter or model, and `held_line` says in the run log how much of them a rank holds
(engine/train/trainer.py's HeldWeights, once the Trainer has wrapped the model).

Plain Python at import (no torch, no transformers): launch.py imports it before a config is even checked.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from engine.config import ADAPTER_METHODS, RunConfig
from engine.config_distributed import FSDP_ON_CPU
from engine.estimate import memory, sharding
from engine.jobs import rundir
from engine.sentences import said
from engine.train.launch import LaunchError

DEEPSPEED_JSON = "deepspeed.json"
SHARDED = ("fsdp", "deepspeed")
NAMES = {"ddp": "DDP", "fsdp": "FSDP", "deepspeed": "DeepSpeed ZeRO"}


def weights_sharded(config: RunConfig) -> bool:
    """Whether no rank holds the whole weights between uses (FSDP, ZeRO-3): the engine's chunked head, which runs
    the output layer outside the model's forward (engine/train/logits.py), cannot run on them."""
    d = config.distributed
    return d.strategy == "fsdp" or (d.strategy == "deepspeed" and d.zero_stage == 3)


def choose(config: RunConfig, model_config: dict[str, Any] | None, capacity: int | None, device: str
           ) -> tuple[str, str]:
    """(the strategy to train with, the log line saying which and why). `capacity`: bytes of one device (a GPU's
    memory, or the RAM one CPU process may take); the same on every rank, so that all ranks choose alike."""
    d = config.distributed
    if d.strategy == "fsdp" and device == "cpu":
        raise LaunchError(FSDP_ON_CPU)
    if d.strategy != "auto":
        zero = said("engine.log.dist_zero", stage=d.zero_stage) if d.strategy == "deepspeed" else ""
        offload = d.fsdp_offload if d.strategy == "fsdp" else d.strategy == "deepspeed" and d.zero_offload
        return d.strategy, said("engine.log.dist_set", name=NAMES[d.strategy], zero=zero, world=d.world_size,
                                offload=said("engine.log.dist_offload") if offload else "")
    if config.method.name in ADAPTER_METHODS:
        return "ddp", said("engine.log.dist_auto_adapter", world=d.world_size, method=config.method.name)
    found = memory.estimate(config, model_config, "gpu" if device == "cuda" else "cpu") if model_config else None
    if found is None or capacity is None:
        return "ddp", said("engine.log.dist_auto_unknown", world=d.world_size)
    if found.total <= capacity:
        return "ddp", said("engine.log.dist_auto_fits", world=d.world_size, method=config.method.name,
                           needed=gib(found.total), capacity=gib(capacity))
    chosen = "deepspeed" if find_spec("deepspeed") is not None else "fsdp" if device == "cuda" else "ddp"
    if chosen == "ddp":  # FSDP needs GPUs (FSDP_ON_CPU)
        return "ddp", said("engine.log.dist_auto_no_deepspeed", world=d.world_size, method=config.method.name,
                           needed=gib(found.total), capacity=gib(capacity))
    each = sharding.per_rank(found, chosen, d.world_size, zero_stage=3)
    name = "DeepSpeed ZeRO-3" if chosen == "deepspeed" else "FSDP"
    return chosen, said("engine.log.dist_auto_sharded", name=name, world=d.world_size, method=config.method.name,
                        needed=gib(found.total), capacity=gib(capacity), each=gib(each.total))


def settle(config: RunConfig, model_config: dict[str, Any] | None, device: str) -> str:
    """Set config.distributed.strategy to the one `choose` picks on this device (ZeRO-3 where auto picks
    DeepSpeed); the line that says which and why."""
    chosen, line = choose(config, model_config, capacity(device, config.distributed.nproc_per_node), device)
    if chosen != config.distributed.strategy:  # auto
        config.distributed.zero_stage = 3
    config.distributed.strategy = chosen
    return line


def gib(size: int) -> str:
    return f"{size / memory.GIB:.2f} GiB"


def capacity(device: str, processes: int) -> int:
    """Bytes of one device: the first GPU's total memory, or the machine's RAM shared by its `processes`."""
    if device == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // max(processes, 1)


def arguments(config: RunConfig, run: rundir.RunDir) -> dict[str, Any]:
    """The TrainingArguments of `config.distributed.strategy` (already chosen: not auto) for a run of several
    processes, or of one that asked for FSDP or DeepSpeed by name; none for one process."""
    d = config.distributed
    if d.strategy == "fsdp":
        checkpointing = config.train.gradient_checkpointing
        return {"fsdp": True, "activation_checkpointing": False,  # FSDP's own: the Trainer's gathers twice
                "fsdp_config": {"version": 2, "reshard_after_forward": True, "cpu_offload": d.fsdp_offload,
                                "state_dict_type": "FULL_STATE_DICT", "activation_checkpointing": checkpointing}}
    if d.strategy == "deepspeed":
        return {"deepspeed": str(write_deepspeed(config, run))}
    if d.world_size > 1 and config.method.name in ADAPTER_METHODS:
        return {"ddp_find_unused_parameters": False}
    return {}


def deepspeed_config(config: RunConfig) -> dict[str, Any]:
    """DeepSpeed's config for distributed.zero_stage and zero_offload; "auto" where transformers fills it in from
    the TrainingArguments (batch sizes, accumulation, clipping, precision), so the two never disagree."""
    d = config.distributed
    zero: dict[str, Any] = {"stage": d.zero_stage, "overlap_comm": True, "contiguous_gradients": True,
                            "reduce_bucket_size": "auto"}
    if d.zero_offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if d.zero_stage == 3:
        zero.update({"stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
                     "stage3_gather_16bit_weights_on_model_save": True})  # whole weights in each checkpoint
        if d.zero_offload:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
            "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"},
            "zero_optimization": zero, "zero_force_ds_cpu_optimizer": False}


def write_deepspeed(config: RunConfig, run: rundir.RunDir) -> Path:
    """RUN/deepspeed.json, which the run folder keeps. Every rank writes the same text atomically (ranks on
    another machine read their own folder), so none reads it half-written."""
    path = run.path / DEEPSPEED_JSON
    rundir.write_json_atomic(path, deepspeed_config(config))
    return path


def full_state_dict(trainer: Any) -> dict[str, Any] | None:
    """The whole weights of a sharded model (FSDP, DeepSpeed ZeRO), gathered on rank 0 by accelerate; every rank
    must call it. None for DDP and one process, whose model holds its weights whole."""
    if not (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled):
        return None
    if trainer.is_deepspeed_enabled and trainer.accelerator.deepspeed_engine_wrapped is None:
        return None  # never wrapped (a checkpoint of the last step, restored without training): whole weights
    return trainer.accelerator.get_state_dict(trainer.model_wrapped)


def held_weights(model: Any) -> tuple[int, int]:
    """(bytes of the model's parameters this process holds, bytes of them whole): ZeRO-3 keeps a partition of each
    (`ds_tensor` of its `ds_numel` elements), FSDP2 a DTensor's local shard; other parameters are held whole.
    4-bit weights count as bitsandbytes packs them (two per byte)."""
    held = whole = 0
    for p in model.parameters():
        size = p.element_size()
        if hasattr(p, "ds_tensor"):
            held, whole = held + p.ds_tensor.numel() * size, whole + p.ds_numel * size
        elif hasattr(p, "to_local"):
            held, whole = held + p.to_local().numel() * size, whole + p.numel() * size
        else:
            held, whole = held + p.numel() * size, whole + p.numel() * size
    return held, whole


def held_line(config: RunConfig, model: Any) -> str:
    """The run log's line of how much of the weights this rank holds (FSDP, ZeRO-3), measured by held_weights."""
    held, whole = held_weights(model)
    d = config.distributed
    name = "FSDP" if d.strategy == "fsdp" else "DeepSpeed ZeRO-3"
    return said("engine.log.dist_held", held=f"{held / memory.MIB:,.2f}", whole=f"{whole / memory.MIB:,.2f}", name=name,
                world=d.world_size)
