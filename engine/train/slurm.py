"""`python launch.py train CONFIG --print-command --launcher slurm`: an sbatch script that trains the config on a
Slurm allocation of distributed.nnodes machines, submitted as it is (`sbatch train.sbatch`).

Plain Python (no torch). One task per node (`srun --ntasks-per-node=1`) runs torchrun, which starts
distributed.nproc_per_node ranks there; the rendezvous comes from the allocation: node 0 is the first host of
`scontrol show hostnames "$SLURM_JOB_NODELIST"` (MASTER_ADDR, with distributed.master_port), and each node's rank
is the SLURM_NODEID srun gives its task. The command of each node is the one `--print-command` prints for it
(engine/train/launch.py command), with the rank marker set, so node 0's ranks write the run folder as always.
"""

from __future__ import annotations

import shlex
import sys

from engine.config import RunConfig
from engine.train import launch


def script(config: RunConfig, train_args: list[str]) -> str:
    """The sbatch script's text (bash)."""
    d = config.distributed
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={d.nproc_per_node}",
                f"--nnodes={d.nnodes}", "--max-restarts=0", str(launch.LAUNCH), "train", *train_args]
    # the node's rank and node 0's address are the shell's, expanded on each node by the task srun starts there
    node = (f"exec {shlex.join(torchrun[:5])} --node-rank=\"$SLURM_NODEID\" --master-addr=\"$MASTER_ADDR\" "
            f"--master-port=\"$MASTER_PORT\" {shlex.join(torchrun[5:])}")
    on_cpu = config.devices.replace(" ", "") == "cpu"
    lines = [
        "#!/bin/bash",
        f"# PEFT Workbench: {d.nnodes} node(s) x {d.nproc_per_node} process(es) of {shlex.quote(config.output_dir)}"
        " (node 0 keeps the run folder). Submit it as it is: sbatch THIS_FILE",
        "# Without a shared filesystem each node keeps its checkpoints at this path on its own disk and takes node "
        "0's config where it has none (engine/train/nodes.py); to resume, print the script with --resume RUN_DIR.",
        f"#SBATCH --job-name={shlex.quote(job_name(config))}",
        f"#SBATCH --nodes={d.nnodes}",
        "#SBATCH --ntasks-per-node=1",
        *([] if on_cpu else [f"#SBATCH --gpus-per-node={d.nproc_per_node}"]),
        "set -euo pipefail",
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)',  # not head: SIGPIPE, pipefail
        f"MASTER_PORT={d.master_port}",
        f"export MASTER_ADDR MASTER_PORT {launch.RANK_BODY_ENV}=1",
        *(["export CUDA_VISIBLE_DEVICES="] if on_cpu else []),  # GPUs: the allocation's, as Slurm sets them
        f"srun --nodes={d.nnodes} --ntasks-per-node=1 bash -c {shlex.quote(node)}",
    ]
    return "\n".join(lines) + "\n"


def job_name(config: RunConfig) -> str:
    return "peft-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in config.output_dir.rstrip("/")
                             .rsplit("/", 1)[-1])[:60]
