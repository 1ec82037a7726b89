"""Several processes on the CPU (engine/train/launch.py): `python launch.py train` with distributed.nproc_per_node 2
starts torchrun itself (gloo), and the two ranks train one LoRA run: exit 0, one adapter, one event stream written
by rank 0 alone, rank 1's output in its own log file, and an adapter equal (within float tolerance) to the one a
single process trains on the same global batches (batch 2 per rank is batch 4 in one process; packed rows, so that
both draw the same random order; no dropout, a constant rate).

One run of two processes (about 15 s on 2 cores) is shared by the module; the single process trains in-process.
The Slurm script runs on a faked allocation (no training); SIGTERM stops a QLoRA run of two processes (its own)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.config import load_config
from engine.jobs.events import Metrics, Progress, Status, read_events
from engine.jobs.reporter import rank_log
from engine.jobs.rundir import TRAINER_STATE, RunDir
from engine.train.recipe import run_train
from tests.cli import MEMORISE, launch, write_config, write_rows

STEPS = 3
TRAIN = {"max_steps": STEPS, "learning_rate": 1e-2, "lr_scheduler_type": "constant", "packing": "on",
         "report_to": "none"}


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, RunDir, object]:
    """(two processes' run, one process's run, the launcher's completed process)."""
    home = tmp_path_factory.mktemp("distributed")
    data = write_rows(home / "rows.json", MEMORISE * 4)  # 16 rows: 3 steps of 4 rows
    method = {"lora_dropout": 0.0}
    two = write_config(home / "two.yaml", tiny_model, data, home / "two", method=method,
                       train={**TRAIN, "batch_size": 2})
    raw = two.read_text(encoding="utf-8") + "distributed:\n  nproc_per_node: 2\n"
    two.write_text(raw, encoding="utf-8")
    done = launch("train", str(two), timeout=240)
    one = write_config(home / "one.yaml", tiny_model, data, home / "one", method=method,
                       train={**TRAIN, "batch_size": 4})
    assert run_train(load_config(one)) == 0
    return RunDir(home / "two"), RunDir(home / "one"), done


def test_two_processes_train_one_run_through_torchrun(runs) -> None:
    two, _, done = runs
    assert done.returncode == 0, done.stderr[-3000:]
    assert (two.adapter / "adapter_model.safetensors").is_file() and not (two.path / "adapter.partial").exists()
    events = read_events(two.events)
    steps = [event.step for event in events if isinstance(event, Progress)]
    assert steps == list(range(1, STEPS + 1))  # one stream: rank 1 wrote none of its own
    states = [event.state for event in events if isinstance(event, Status)]
    assert states.count("completed") == 1 and states[-1] == "completed"
    assert [e.step for e in events if isinstance(e, Metrics) and e.values.get("loss") is not None] == steps
    assert f"step {STEPS}/{STEPS}" in rank_log(two.path, 1).read_text(encoding="utf-8")  # rank 1's own file
    assert "saved adapter/" in done.stdout  # rank 0's lines reach the terminal
    assert "distributed: auto chose DDP in 2 processes: lora trains an adapter" in two.log.read_text(encoding="utf-8")
    logs = rank_log(two.path, 1).read_text(encoding="utf-8") + (two.path / "ranks" / "torchrun.log").read_text()
    assert "find_unused_parameters=True" not in logs  # DDP does not search for unused adapter weights (torch warns)


def test_the_adapter_equals_one_process_trained_on_the_same_global_batches(runs) -> None:
    two, one, _ = runs
    a, b = load_file(two.adapter / "adapter_model.safetensors"), load_file(one.adapter / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    moved = max(float((b[k] - load_file_initial(k, b)).abs().max()) for k in b)
    assert moved > 1e-3  # it trained: lora_B starts at zero
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_tokens_seen_are_the_runs_not_one_ranks(runs) -> None:
    """Both ranks' tokens: the figure behind tokens/s counts what the single process counted."""
    two, one, _ = runs
    seen = [json.loads((run.checkpoints / f"checkpoint-{STEPS}" / TRAINER_STATE).read_text())["num_input_tokens_seen"]
            for run in (two, one)]
    assert seen[0] == seen[1] > 0


def test_two_nodes_over_loopback_train_together_through_the_printed_commands(runs, tmp_path) -> None:
    """`nnodes: 2` of one process each, node 0 at 127.0.0.1: `--print-command` prints each node's command, both run
    here at once, and they train the module's run again (the same global batches as its two processes of one
    node): node 0 keeps the run folder, and its adapter equals the single node's."""
    import shlex
    import socket
    import subprocess

    from tests.cli import ROOT, engine_env

    two, _, _ = runs
    with socket.socket() as probe:  # a free port for node 0's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = (two.path.parent / "two.yaml").read_text(encoding="utf-8").replace(str(two.path), str(tmp_path / "nodes"))
    config = tmp_path / "nodes.yaml"
    config.write_text(text.replace("distributed:\n  nproc_per_node: 2\n", "devices: cpu\ndistributed:\n  "
                                   f"nnodes: 2\n  master_addr: 127.0.0.1\n  master_port: {port}\n"), encoding="utf-8")
    printed = launch("train", str(config), "--print-command")
    assert printed.returncode == 0, printed.stderr
    nodes = [line for line in printed.stdout.splitlines() if line and not line.startswith("#")]
    assert len(nodes) == 2 and all("--nnodes=2" in line and "--nproc-per-node=1" in line for line in nodes)
    started = []
    for line in nodes:
        words = shlex.split(line)
        env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-")
                   and words.index(word) < words.index(sys.executable))
        started.append(subprocess.Popen(words[len(env):], cwd=ROOT, env={**engine_env(), **env},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    ended = [process.communicate(timeout=240) for process in started]
    assert [process.returncode for process in started] == [0, 0], [err[-2000:] for _, err in ended]
    nodes_run = RunDir(tmp_path / "nodes")
    assert [e.state for e in read_events(nodes_run.events) if isinstance(e, Status)][-1] == "completed"
    a = load_file(nodes_run.adapter / "adapter_model.safetensors")
    b = load_file(two.adapter / "adapter_model.safetensors")
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def load_file_initial(key: str, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """What LoRA's B starts at (zeros); A is drawn at random, so it is compared to itself."""
    return torch.zeros_like(weights[key]) if "lora_B" in key else weights[key]


FAKE_SCONTROL = """#!/bin/bash
# scontrol show hostnames NODELIST: the two hosts of the faked allocation
[[ "$1 $2" == "show hostnames" && "$3" == "node-[1-2]" ]] && printf 'node-1\\nnode-2\\n'
"""
FAKE_SRUN = """#!/bin/bash
# srun: one task on each of SLURM_NNODES "nodes" of this machine, each with its SLURM_NODEID; the program a task
# execs is recorded (with the environment it would see) instead of started
while [[ "$1" == --* ]]; do shift; done
for node in $(seq 0 $((SLURM_NNODES - 1))); do
  SLURM_NODEID=$node "$1" "$2" "${3/exec /exec record }" &
done
wait
"""
RECORD = """#!/bin/bash
echo "node=$SLURM_NODEID marker=$WORKBENCH_RANK_BODY gpus=[$CUDA_VISIBLE_DEVICES] $*" >> "$RECORDED"
"""


def test_the_slurm_script_starts_one_torchrun_per_node_with_the_allocations_rendezvous(tmp_path, capsys) -> None:
    """`--print-command --launcher slurm` on a faked 2-node allocation (SLURM variables, srun and scontrol on
    PATH that run each node's task here): bash -n passes, and each node starts torchrun with its rank and node 0's
    address. No training: the torchrun each task would exec is recorded."""
    import os
    import subprocess

    from engine.train import launch as launcher
    from engine.train.recipe import main as train_main

    data = write_rows(tmp_path / "rows.json", MEMORISE)
    config = write_config(tmp_path / "run.yaml", tmp_path / "model", data, tmp_path / "run")
    config.write_text(config.read_text(encoding="utf-8") + "devices: cpu\ndistributed:\n  nproc_per_node: 2\n"
                      "  nnodes: 2\n  master_port: 29611\n", encoding="utf-8")
    assert train_main([str(config), "--print-command", "--launcher", "slurm"]) == 0
    script = tmp_path / "train.sbatch"
    script.write_text(capsys.readouterr().out, encoding="utf-8")
    assert "#SBATCH --nodes=2" in script.read_text(encoding="utf-8")
    subprocess.run(["bash", "-n", str(script)], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("scontrol", FAKE_SCONTROL), ("srun", FAKE_SRUN), ("record", RECORD)):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node-[1-2]",
           "SLURM_NNODES": "2", "RECORDED": str(tmp_path / "recorded")}
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=30)
    started = sorted((tmp_path / "recorded").read_text(encoding="utf-8").splitlines())
    assert len(started) == 2
    for node, line in enumerate(started):
        head, _, command = line.partition(" gpus=[] ")
        assert head == f"node={node} marker=1"  # the rank marker, and no GPU for devices: cpu
        words = command.split()
        assert words[:3] == [sys.executable, "-m", "torch.distributed.run"]
        assert {"--nproc-per-node=2", "--nnodes=2", f"--node-rank={node}", "--master-addr=node-1",
                "--master-port=29611", "--max-restarts=0"} <= set(words)
        assert words[-3:] == [str(launcher.LAUNCH), "train", str(config.resolve())]
    assert not (tmp_path / "run").exists()  # printing the script wrote nothing


def test_sigterm_stops_both_qlora_ranks_at_the_same_step_with_a_loadable_adapter(tiny_model, tmp_path) -> None:
    """QLoRA in two CPU processes (DDP, gloo), stopped by SIGTERM to `python launch.py train` once it trains: the
    launcher passes it on through torchrun, the ranks agree on the stop after a step, and the run ends stopped, exit
    0, with one event stream, a checkpoint of the step both ranks stopped at, and an adapter peft loads."""
    import signal
    import subprocess
    import time

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tests.cli import ROOT, engine_env

    data = write_rows(tmp_path / "rows.json", MEMORISE * 4)
    config = write_config(tmp_path / "run.yaml", tiny_model, data, tmp_path / "run", method={"name": "qlora"},
                          train={**TRAIN, "max_steps": 5000, "batch_size": 2})
    config.write_text(config.read_text(encoding="utf-8") + "distributed:\n  nproc_per_node: 2\n", encoding="utf-8")
    run = RunDir(tmp_path / "run")
    process = subprocess.Popen([sys.executable, "launch.py", "train", str(config)], cwd=ROOT, env=engine_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run.events.exists() and any(isinstance(e, Progress) for e in read_events(run.events))):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    events = read_events(run.events)
    steps = [event.step for event in events if isinstance(event, Progress)]
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] < 5000  # one stream, stopped early
    assert [event.state for event in events if isinstance(event, Status)][-1] == "stopped"
    rank_1_steps = [int(line.split()[1].split("/")[0]) for line in
                    rank_log(run.path, 1).read_text(encoding="utf-8").splitlines() if line.startswith("step ")]
    assert rank_1_steps[-1] == steps[-1]  # both ranks stopped at the same step
    assert run.last_checkpoint().name == f"checkpoint-{steps[-1]}"
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    loaded = PeftModel.from_pretrained(base, run.adapter)
    assert any("lora_B" in name for name, _ in loaded.named_parameters())
