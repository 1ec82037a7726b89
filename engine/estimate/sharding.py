"""The memory estimate of one process (rank) of a run of several: what FSDP and DeepSpeed ZeRO share among them.

Plain Python on a MemoryEstimate (engine/estimate/memory.py), so that the page can show it per device without
torch. Every rank of DDP holds the whole model, its gradients and its optimizer states; ZeRO-2 shards the gradients
and the optimizer states over the ranks; ZeRO-3 and FSDP (full sharding) shard the weights too. Offload keeps the
optimizer states (ZeRO-2) or the weights, gradients and states (ZeRO-3, FSDP's cpu_offload) in the CPU's memory,
so the device holds none of them between uses; the activations, logits and mask are each rank's own batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.estimate.memory import MemoryEstimate


def per_rank(found: MemoryEstimate, strategy: str, world: int, zero_stage: int = 3,
             offload: bool = False) -> MemoryEstimate:
    """`found` (one process's step) as one of `world` ranks of `strategy` (ddp, fsdp, deepspeed) holds it."""
    if strategy not in ("fsdp", "deepspeed"):
        return found
    world = max(world, 1)

    def share(size: int) -> int:
        return -(-size // world)

    if strategy == "fsdp" or zero_stage == 3:  # weights, gradients and optimizer states sharded (or on the CPU)
        if offload:
            return dataclasses.replace(found, weights=0, gradients=0, optimizer=0)
        return dataclasses.replace(found, weights=share(found.weights), gradients=share(found.gradients),
                                   optimizer=share(found.optimizer))
    return dataclasses.replace(found, gradients=share(found.gradients),  # ZeRO-2: the weights stay whole
                               optimizer=0 if offload else share(found.optimizer))


def of_run(found: MemoryEstimate, distributed: Any) -> MemoryEstimate:
    """`found` as one rank of a config's `distributed` (engine/config_distributed.py, its strategy settled) holds it."""
    d = distributed
    offload = d.fsdp_offload if d.strategy == "fsdp" else d.zero_offload
    return per_rank(found, d.strategy, d.world_size, d.zero_stage, offload)
