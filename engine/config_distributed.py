"""`devices` and `distributed`: on which devices a run trains, and in how many processes on how many machines.

Plain Python (pydantic, importlib): engine.config builds RunConfig on `DistributedOptions`, so both keys sit at the
top of a run's config. One process (the default) trains as it always has; more than one (`nproc_per_node` times
`nnodes`) are started by torch's own launcher, `python -m torch.distributed.run` (torchrun), which
`python launch.py train` runs itself (engine/train/launch.py), and the Trainer trains them as DDP.

DDP, FSDP and DeepSpeed ZeRO are the Trainer's own integrations (engine/train/strategy.py), on the CPU (gloo) or
on GPUs (nccl), on one machine or several through the printed command. FSDP on the CPU is refused with a sentence
(accelerate applies its FSDP plugin only to GPU-like devices and would train DDP without a word). The packages are
looked for without importing them (the web process imports this module).
"""

from __future__ import annotations

import re
from importlib.util import find_spec
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal["auto", "ddp", "fsdp", "deepspeed"]
FSDP_ON_CPU = ("distributed.strategy fsdp needs GPUs: on the CPU the Trainer's FSDP integration (accelerate) trains "
               "DDP instead, so set distributed.strategy to ddp, or to deepspeed, whose ZeRO-3 shards on the CPU too.")
DEVICES = re.compile(r"auto|cpu|\d+(,\d+)*")  # auto, cpu, or GPU indices: 0,1,3


class DistributedConfig(BaseModel):
    """`distributed:` of a run's config: torchrun's rendezvous and the strategy the Trainer trains with."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    strategy: Strategy = Field("auto", description=(
        "How several processes share the work: auto (DDP for adapter methods and for a model that fits one device, "
        "else FSDP or DeepSpeed ZeRO-3), ddp (each process holds the whole model and trains on its share of every "
        "batch), fsdp or deepspeed (shard the weights, gradients and optimizer states over the processes)."))
    nproc_per_node: int = Field(1, ge=1, description=(
        "Processes on each machine: one per GPU, or CPU processes (gloo backend) on a machine without one."))
    nnodes: int = Field(1, ge=1, description="Machines that train together (each starts its own torchrun).")
    node_rank: int = Field(0, ge=0, description="This machine's place among nnodes (0 keeps the run folder).")
    master_addr: str | None = Field(None, description="Address of node 0, which the other machines reach.")
    master_port: int = Field(29500, ge=1, le=65535, description="Port on node 0 for the rendezvous.")
    save_on_each_node: bool | Literal["auto"] = Field("auto", description=(
        "Several machines: each node keeps the checkpoints a resume needs in its own run folder (true), or node 0 "
        "alone (false); auto: each node does where the nodes do not share node 0's run folder (no shared "
        "filesystem), found out when they start."))
    fsdp_offload: bool = Field(False, description=(
        "FSDP: keep the weights, gradients and optimizer states in the CPU's memory between uses (slower, for a "
        "model that does not fit the GPUs otherwise)."))
    zero_stage: Literal[2, 3] = Field(3, description=(
        "DeepSpeed ZeRO stage: 2 shards the gradients and optimizer states over the processes, 3 the weights too."))
    zero_offload: bool = Field(False, description=(
        "DeepSpeed: keep the optimizer states (and with stage 3 the weights) in the CPU's memory."))

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


class DistributedOptions(BaseModel):
    """`devices` and `distributed`, inherited by engine.config.RunConfig."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    devices: str = Field("auto", description=(
        "Where to train: auto (the GPUs torch sees, else the CPU), cpu, or GPU indices such as 0,1."))
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)


def named_gpus(devices: str) -> tuple[int, ...] | None:
    """The GPU indices `devices` names ("0,1" -> (0, 1)); () for cpu; None for auto (every GPU the process sees),
    and for a value the schema refuses."""
    text = devices.replace(" ", "").lower()
    if text == "cpu":
        return ()
    return tuple(int(part) for part in text.split(",")) if re.fullmatch(r"\d+(,\d+)*", text) else None


def visible_devices(devices: str) -> dict[str, str]:
    """The environment that keeps a process (and the torch it imports) to `devices`: its GPUs, none for cpu, and
    nothing set for auto."""
    gpus = named_gpus(devices)
    return {} if gpus is None else {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}


def rendezvous_problem(d: DistributedConfig) -> str | None:
    """The sentence for several machines started by torchrun without node 0's address (a Slurm script takes it from
    the allocation instead), else None."""
    if d.nnodes > 1 and not d.master_addr:
        return (f"distributed.nnodes is {d.nnodes} but distributed.master_addr is not set: give the address of node "
                "0 that the other machines can reach, or under Slurm print a script that takes it from the "
                "allocation with --print-command --launcher slurm.")
    return None


def distributed_problems(devices: str, d: DistributedConfig, method: str) -> list[str]:
    """One sentence per reason the devices and processes asked for cannot be had, found without torch."""
    issues: list[str] = []
    if not DEVICES.fullmatch(devices.replace(" ", "")):
        issues.append(f"devices is {devices!r}: write auto, cpu, or GPU indices separated by commas such as 0,1.")
    elif devices[:1].isdigit() and len(devices.split(",")) < d.nproc_per_node:
        issues.append(f"devices lists {len(devices.split(','))} GPU(s) for {d.nproc_per_node} processes per node: "
                      "list one GPU per process, or lower distributed.nproc_per_node.")
    if d.node_rank >= d.nnodes:
        issues.append(f"distributed.node_rank is {d.node_rank} but there are {d.nnodes} node(s): number the nodes "
                      f"from 0 to {d.nnodes - 1}.")
    if d.strategy == "deepspeed" and find_spec("deepspeed") is None:
        issues.append("distributed.strategy is deepspeed but deepspeed is not installed: pip install deepspeed, "
                      "or set distributed.strategy to ddp.")
    if d.strategy == "fsdp" and devices.replace(" ", "") == "cpu":
        issues.append(FSDP_ON_CPU)
    if method == "qlora" and d.strategy == "fsdp":  # DDP and DeepSpeed ZeRO-2/3 train QLoRA (bitsandbytes)
        issues.append("QLoRA with distributed.strategy fsdp is not available yet (FSDP would have to shard its "
                      "4-bit weights): set distributed.strategy to deepspeed, whose ZeRO-3 shards them, or to ddp "
                      "or auto, or use method lora.")
    return issues
