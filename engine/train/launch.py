"""How `python launch.py train CONFIG` starts a run of several processes: torch's own launcher, torchrun.

Plain Python (no torch import here). A config whose `distributed` asks for more than one process (nproc_per_node
times nnodes) is trained by `python -m torch.distributed.run ... launch.py train CONFIG` with RANK_BODY_ENV set:
each process torchrun starts (a rank) sees the marker and trains, through the job lifecycle as one process does,
and transformers' Trainer trains them with the strategy engine/train/strategy.py settles (DDP, FSDP or DeepSpeed
ZeRO; gloo on the CPU, nccl on GPUs). FSDP and DeepSpeed start through torchrun even in one process. Only rank 0
writes the run's events, status, checkpoints and weights (engine.jobs.reporter, engine.train.recipe); the other
ranks' stdout, stderr and log go to RUN/ranks/rank-N.log, torchrun's own output to RUN/ranks/torchrun.log: files,
never a pipe that fills.

`--print-command` prints the command instead of running it, one per node for several machines (each started on its
node; node 0 keeps the run folder). A rank that dies ends every rank (torchrun's default, no restarts) and the
launcher says which one, with its exit code and log, in the run's failed status.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from engine import sentences
from engine.config import RunConfig
from engine.config_distributed import named_gpus, visible_devices
from engine.jobs import rundir
from engine.jobs.events import Progress, read_events
from engine.jobs.failures import EngineError
from engine.jobs.reporter import RANKS, JobReporter, rank, rank_log

RANK_BODY_ENV = "WORKBENCH_RANK_BODY"  # set on torchrun: the processes it starts train (they do not launch again)
LAUNCH = Path(__file__).resolve().parents[2] / "launch.py"
TORCHRUN_LOG = "torchrun.log"


NODE_0 = "keeps the run folder"  # the events, status and weights the page follows
OTHER_NODE = ("takes node 0's config where it has none at this path; keeps its own checkpoints where node 0's run "
              "folder is not shared")


class LaunchError(EngineError):
    """A run of several processes started in a way that cannot give them; the message is one sentence."""


def check_world(config: RunConfig) -> None:
    """LaunchError where the config asks for several processes and this process was not started as one of them
    (`python -m engine run` alone; the page starts a run of several processes as `python -m engine train`)."""
    wanted, started = config.distributed.world_size, int(os.environ.get("WORLD_SIZE", "1") or 1)
    if config.distributed.strategy in ("fsdp", "deepspeed") and not is_rank() and "WORLD_SIZE" not in os.environ:
        raise LaunchError(f"distributed.strategy {config.distributed.strategy} trains through torchrun, even in "
                          "one process: start it with python launch.py train CONFIG, or set distributed.strategy "
                          "to auto or ddp to train it here.")
    if wanted != started:
        raise LaunchError(f"This run asks for {wanted} processes (distributed.nproc_per_node times "
                          f"distributed.nnodes) but was started as {started}: start it with python launch.py train "
                          "CONFIG, which starts torchrun, or set both to 1 to train it here.")


def check_devices(config: RunConfig, gpus_seen: int) -> None:
    """LaunchError where `devices` names GPUs this process does not see (`gpus_seen`: torch.cuda.device_count() once
    the config's CUDA_VISIBLE_DEVICES is set), so a run asked to train on GPUs never trains on the CPU instead."""
    named = named_gpus(config.devices)
    if named and gpus_seen < len(named):
        found = f"only {gpus_seen} of them is visible" if gpus_seen else "no GPU is visible here"
        raise LaunchError(f"devices {config.devices} names GPU(s) {', '.join(map(str, named))} but {found}: set "
                          "devices to auto or cpu, or to the indices nvidia-smi lists.")


def checkpoint_processes(checkpoint: Path) -> int:
    """How many processes wrote a checkpoint: the Trainer keeps one rng_state_N.pth per rank where several
    trained (this node's ranks only, on a machine that does not share the folder), rng_state.pth for one."""
    return len(list(checkpoint.glob("rng_state_*.pth"))) or 1


def resume_problem(checkpoint: Path, config: RunConfig) -> str | None:
    """The sentence refusing to resume `checkpoint` with another number of processes than wrote it, else None: for
    a checkpoint that does not say how it was trained (engine/train/world.py judges those that do)."""
    d, written = config.distributed, checkpoint_processes(checkpoint)
    if written in (d.world_size, d.nproc_per_node if d.nnodes > 1 else d.world_size):
        return None
    return (f"{checkpoint.name} was written by {written} process(es) and this run asks for {d.world_size}: resume it "
            f"with the same number (distributed.nproc_per_node times distributed.nnodes), since its data order and "
            "random state are per process.")


def is_rank() -> bool:
    """Whether this process is one of the ranks torchrun started for a run (it trains, it does not launch)."""
    return os.environ.get(RANK_BODY_ENV) == "1"


def several(config: RunConfig) -> bool:
    """Whether torchrun starts the run: several processes, or FSDP or DeepSpeed asked for by name (one process of
    them trains through the same launcher, as on one GPU)."""
    return config.distributed.world_size > 1 or config.distributed.strategy in ("fsdp", "deepspeed")


def device_env(config: RunConfig) -> dict[str, str]:
    """The environment that restricts a run to its `devices`: GPU indices, or no GPU at all for `cpu`."""
    return visible_devices(config.devices)


def command(config: RunConfig, train_args: list[str], node_rank: int | None = None) -> list[str]:
    """torchrun's command line for node `node_rank` (the config's by default): a single machine gets a rendezvous
    on a free local port (--standalone), several machines node 0's address and port."""
    d = config.distributed
    line = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={d.nproc_per_node}",
            "--max-restarts=0"]
    if d.nnodes == 1 and not d.master_addr:
        line.append("--standalone")
    else:
        rank_of_node = d.node_rank if node_rank is None else node_rank
        line += [f"--nnodes={d.nnodes}", f"--node-rank={rank_of_node}",
                 f"--master-addr={d.master_addr or '127.0.0.1'}", f"--master-port={d.master_port}"]
    return [*line, str(LAUNCH), "train", *train_args]


def printed(config: RunConfig, train_args: list[str]) -> str:
    """What `--print-command` prints: the shell command of each node, with the environment it needs."""
    env = {**device_env(config), RANK_BODY_ENV: "1"}
    prefix = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    if not several(config):
        return shlex.join([sys.executable, str(LAUNCH), "train", *train_args])
    nodes = range(config.distributed.nnodes)
    lines = []
    for node in nodes:
        if len(nodes) > 1:
            lines.append(f"# node {node} ({NODE_0 if node == 0 else OTHER_NODE})")
        lines.append(f"{prefix} {shlex.join(command(config, train_args, node))}")
    return "\n".join(lines)


def redirect_rank_output(run_path: Path) -> None:
    """A rank above 0 writes its stdout and stderr to its own log file (rank 0's are torchrun's)."""
    number = rank()
    if number == 0:
        return
    path = rank_log(run_path, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)


def start(config: RunConfig, train_args: list[str]) -> int:
    """Run torchrun for this node and wait for it; 0 when the run completed or stopped, else 1 with a sentence."""
    run = rundir.RunDir(Path(config.output_dir))
    logs = run.path / RANKS
    logs.mkdir(parents=True, exist_ok=True)
    if not run.config.exists():  # the folder is this product's run from now on (rank 0 checks it again)
        run.config.write_text(config.to_yaml(), encoding="utf-8")
    env = {**os.environ, **device_env(config), RANK_BODY_ENV: "1"}
    before = run.read_status().get("t")  # a status of an earlier attempt says nothing of this one
    if config.distributed.nnodes > 1:  # this node's torchrun waits for the others' at the rendezvous
        print(f"node {config.distributed.node_rank} of {config.distributed.nnodes} starts; start each other node "
              f"with its command:\n{printed(config, train_args)}", flush=True)
    with open(logs / TORCHRUN_LOG, "wb") as log_file:
        process = subprocess.Popen(command(config, train_args), env=env, stdin=subprocess.DEVNULL,
                                   stderr=log_file)

        def forward(signum: int, _frame: object) -> None:  # stop and save reaches torchrun, which tells every rank
            process.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = process.wait()
    status = run.read_status()
    status = status if status.get("t") != before else {}
    if status.get("state") in ("completed", "stopped"):
        return 0
    if code == 0:
        return 0 if config.distributed.node_rank else 1  # another node's torchrun: node 0 keeps the status
    sentence = failure(config, run, code, status)
    if config.distributed.node_rank == 0:
        with JobReporter(run, echo=False) as reporter:
            reporter.status("failed", error=sentence)
    print(f"error: {sentence}", file=sys.stderr)
    return 1


ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)
FAILED_RANK = re.compile(r"rank\s*:\s*(\d+) \(local_rank.*?exitcode\s*:\s*(-?\d+)", re.S)
TEARDOWN = (signal.SIGTERM, signal.SIGINT)  # what torchrun sends the other ranks once one has failed


def culprit(output: str) -> tuple[tuple[int, int] | None, bool]:
    """((rank, exit code) of the rank that ended the run, or None; whether it was killed from outside), from
    torchrun's failure summary. A rank killed by a signal other than torchrun's own teardown (SIGKILL: kill -9 or
    the out-of-memory killer; SIGSEGV...) comes first: the other ranks' collectives then fail on the lost peer
    ("Connection reset by peer"), and torchrun may name one of them as the first observed failure."""
    failed = [(int(rank), int(exit_code)) for rank, exit_code in FAILED_RANK.findall(output)]
    killed = [(rank, exit_code) for rank, exit_code in failed if exit_code < 0 and -exit_code not in TEARDOWN]
    if killed:
        return killed[0], True
    root = ROOT_CAUSE.search(output)
    return ((int(root[1]), int(root[2])) if root else None), False


def failure(config: RunConfig, run: rundir.RunDir, code: int, status: dict) -> str:
    """One sentence for a run of several processes that failed: the rank `culprit` blames, with its exit code (a
    signal's name) and its log file; rank 0's own sentence instead where rank 0 failed first and said why."""
    output = read_text(run.path / RANKS / TORCHRUN_LOG)  # torchrun's output and rank 0's stderr
    found, killed = culprit(output)
    said = status.get("error") or next(iter(re.findall(r"^error: (.+)$", output, re.M)[-1:]), None)
    if found is None or (not killed and found[0] == 0 and said):
        if said:
            return said  # rank 0's status keeps its key (a Sentence); a line of its stderr is said as it is
        return sentences.said("engine.rank.torchrun", code=code, log=str(run.path / RANKS / TORCHRUN_LOG))
    number, exit_code = found
    how = sentences.said("engine.rank.exit_code", code=exit_code)
    if exit_code < 0 and -exit_code in signal.Signals._value2member_map_:
        how = sentences.said("engine.rank.signal", signal=signal.Signals(-exit_code).name)
    where = run.log if number == 0 else rank_log(run.path, number)
    events = read_events(run.events) if run.events.exists() else []
    steps = [event.step for event in events if isinstance(event, Progress)]
    step = sentences.said("engine.rank.after_step", step=steps[-1]) if steps else ""
    return sentences.said("engine.rank.failed", rank=number, world=config.distributed.world_size, how=how,
                          step=step, log=str(where))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
