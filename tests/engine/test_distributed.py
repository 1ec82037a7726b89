"""Several processes on the CPU (gloo), started from the page's queue (webui.jobs: the scheduler starts a run of
several processes as `python -m engine train RUN/config.yaml`, which starts torchrun; engine/train/launch.py).

One module-scoped set of runs, in one workspace with the real engine:
- two: LoRA in 2 processes that completes: one adapter, one event stream written by rank 0 alone, rank 1's output
  in its own log file, the page's reader shows it completed with the run's (global) tokens/s, and the adapter equals
  (within float tolerance) the one a single process (one, trained in-process) trains on the same global batches
  (batch 2 per rank is batch 4 in one process; packed rows, so that both draw the same random order; no dropout, a
  constant rate).
- stopped: QLoRA in 2 processes, Stop pressed once it trained a step: both ranks stop at the same step, with that
  step's checkpoint and an adapter peft loads; then it is resumed in ONE process with the same global batch
  (engine/train/world.py), and continues where it stopped in the data: its steps after the stop have the losses of
  a single process (reference, in-process) trained from the start.
- cancelled: Cancel once torchrun started both ranks (each in a session of its own): no process of the run is left.
The Slurm script runs on a faked allocation (no training)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from safetensors.torch import load_file

from engine.config import load_config, parse_config
from engine.jobs.events import Metrics, Progress, Status, read_events
from engine.jobs.reporter import rank_log
from engine.jobs.rundir import FINAL_STATES, TRAINER_STATE, RunDir
from tests.cli import MEMORISE, run_train_in_process, train_in_process, write_config, write_rows
from tests.polling import wait_for
from webui.components.render import progress_html
from webui.context import AppContext

STEPS = 3
TRAIN = {"max_steps": STEPS, "learning_rate": 1e-2, "lr_scheduler_type": "constant", "packing": "on",
         "report_to": "none"}
ROWS = [{"instruction": f"{row['instruction']} ({n})", "output": row["output"]} for n in range(4) for row in MEMORISE]


@dataclass
class Runs:
    ctx: AppContext
    two: RunDir  # completed, 2 processes
    one: RunDir  # the same global batches in 1 process (in-process)
    stopped: RunDir  # QLoRA, 2 processes, stopped from the page
    stopped_at: int  # the step it stopped at
    family: list[psutil.Process]  # every process of the cancelled run (engine, torchrun, ranks), read before Cancel
    cancelled: Path


def run_config(ctx: AppContext, model: Path, data: Path, method: str, **train) -> dict:
    return {"model": {"name_or_path": str(model)}, "method": {"name": method, "lora_dropout": 0.0},
            "data": {"path": str(data)}, "train": {**TRAIN, "batch_size": 2, **train}, "devices": "cpu",
            "distributed": {"nproc_per_node": 2}, "output_dir": str(ctx.workspace / "unused")}


def state(ctx: AppContext, name: str) -> str | None:
    ctx.jobs.tick()  # starts what is queued, reaps what ended
    found = ctx.runs.info(name).state
    return found if found in FINAL_STATES else None


def finished(ctx: AppContext, name: str, timeout: float) -> str:
    """The final state of run `name`, once its engine process has exited and been reaped (the next run's engine
    is then the only one)."""
    found = wait_for(lambda: state(ctx, name), timeout=timeout)
    wait_for(lambda: ctx.jobs.tick() is not None and not ctx.jobs.children(), timeout=60)
    return found


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    home = tmp_path_factory.mktemp("distributed")
    ctx = AppContext.create(home / "ws", allowed=(tiny_model,))  # the real engine: python -m engine ...
    data = write_rows(ctx.uploads / "rows.json", ROWS)  # 16 rows: 4 steps of 4 rows an epoch

    ctx.runs.submit(parse_config(run_config(ctx, tiny_model, data, "lora")), name="two")
    assert finished(ctx, "two", timeout=240) == "completed", log_of(ctx, "two")
    one = write_config(home / "one.yaml", tiny_model, data, home / "one", method={"lora_dropout": 0.0},
                       train={**TRAIN, "batch_size": 4})
    assert run_train_in_process(load_config(one)) == 0

    ctx.runs.submit(parse_config(run_config(ctx, tiny_model, data, "qlora", max_steps=5000)), name="stopped")
    stopped = ctx.runs.run_dir("stopped")
    wait_for(lambda: state(ctx, "stopped") or progressed(stopped), timeout=240)
    ctx.runs.stop("stopped")
    assert finished(ctx, "stopped", timeout=120) == "stopped", log_of(ctx, "stopped")
    steps = [event.step for event in read_events(stopped.events) if isinstance(event, Progress)]

    ctx.runs.submit(parse_config(run_config(ctx, tiny_model, data, "lora", max_steps=5000)), name="cancelled")
    engine = ctx.jobs.children()[0]  # python -m engine train RUN/config.yaml, the one engine running
    below = wait_for(lambda: len(found := psutil.Process(engine.pid).children(recursive=True)) >= 3 and found,
                     timeout=120)
    family = [psutil.Process(engine.pid), *below]  # torchrun and both ranks
    cancelled = ctx.runs.run_dir("cancelled").path
    ctx.runs.cancel("cancelled")
    return Runs(ctx, RunDir(ctx.runs.runs_dir / "two"), RunDir(home / "one"), stopped, steps[-1], family, cancelled)


def progressed(run: RunDir) -> bool:
    return run.events.exists() and any(isinstance(e, Progress) for e in read_events(run.events))


def log_of(ctx: AppContext, name: str) -> str:
    run = ctx.runs.run_dir(name)
    texts = [path.read_text(encoding="utf-8", errors="replace")[-2000:] for path in
             (run.stdout_log, run.path / "ranks" / "torchrun.log", rank_log(run.path, 1)) if path.exists()]
    return "\n---\n".join(texts)


def test_two_processes_from_the_queue_complete_one_run_the_page_shows_completed(runs) -> None:
    two = runs.two
    assert (two.adapter / "adapter_model.safetensors").is_file() and not (two.path / "adapter.partial").exists()
    events = read_events(two.events)
    steps = [event.step for event in events if isinstance(event, Progress)]
    assert steps == list(range(1, STEPS + 1))  # one stream: rank 1 wrote none of its own
    states = [event.state for event in events if isinstance(event, Status)]
    assert states.count("completed") == 1 and states[-1] == "completed"
    rates = [e.tokens_per_s for e in events if isinstance(e, Metrics) and e.values.get("loss") is not None]
    assert len(rates) == STEPS and all(rate > 0 for rate in rates)
    assert f"step {STEPS}/{STEPS}" in rank_log(two.path, 1).read_text(encoding="utf-8")  # rank 1's own file
    assert "saved adapter/" in two.stdout_log.read_text(encoding="utf-8")  # rank 0's lines reach the engine's log
    assert "distributed: auto chose DDP in 2 processes: lora trains an adapter" in two.log.read_text(encoding="utf-8")
    logs = rank_log(two.path, 1).read_text(encoding="utf-8") + (two.path / "ranks" / "torchrun.log").read_text()
    assert "find_unused_parameters=True" not in logs  # DDP does not search for unused adapter weights (torch warns)
    info = runs.ctx.runs.info("two")
    assert info.state == "completed" and info.train_loss is not None
    snap = runs.ctx.runs.monitor("two").refresh()  # the page's one reader of the events file
    assert snap.state == "completed" and (snap.step, snap.total) == (STEPS, STEPS)
    assert snap.tokens_per_s == rates[-1]
    shown = progress_html(snap)
    assert "data-state='completed'" in shown and f"{snap.tokens_per_s:,.0f}" in shown


def test_the_adapter_equals_one_process_trained_on_the_same_global_batches(runs) -> None:
    a = load_file(runs.two.adapter / "adapter_model.safetensors")
    b = load_file(runs.one.adapter / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    moved = max(float((b[k] - load_file_initial(k, b)).abs().max()) for k in b)
    assert moved > 1e-3  # it trained: lora_B starts at zero
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_tokens_per_s_counts_the_runs_tokens_not_one_ranks(runs) -> None:
    """Both ranks' tokens: the count behind tokens/s is what the single process counted, and the run's tokens/s
    is that count over the seconds it trained (the last step's elapsed time)."""
    seen = [json.loads((run.checkpoints / f"checkpoint-{STEPS}" / TRAINER_STATE).read_text())["num_input_tokens_seen"]
            for run in (runs.two, runs.one)]
    assert seen[0] == seen[1] > 0
    elapsed = [e.elapsed_s for e in read_events(runs.two.events) if isinstance(e, Progress)][-1]
    rate = json.loads(runs.two.metrics.read_text(encoding="utf-8"))["tokens_per_s"]
    assert rate == pytest.approx(seen[0] / elapsed, rel=0.05)


def load_file_initial(key: str, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """What LoRA's B starts at (zeros); A is drawn at random, so it is compared to itself."""
    return torch.zeros_like(weights[key]) if "lora_B" in key else weights[key]


def test_stop_from_the_page_ends_both_qlora_ranks_at_the_same_step_with_a_checkpoint_and_an_adapter(runs) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run, at = runs.stopped, runs.stopped_at
    events = read_events(run.events)
    steps = [event.step for event in events if isinstance(event, Progress)]
    assert steps == list(range(1, at + 1)) and at < 5000  # one stream, stopped early
    assert [event.state for event in events if isinstance(event, Status)][-1] == "stopped"
    rank_1_steps = [int(line.split()[1].split("/")[0]) for line in
                    rank_log(run.path, 1).read_text(encoding="utf-8").splitlines() if line.startswith("step ")]
    assert rank_1_steps[-1] == at  # both ranks stopped at the same step
    assert run.last_checkpoint().name == f"checkpoint-{at}"
    base = AutoModelForCausalLM.from_pretrained(run.read_config().model.name_or_path)
    loaded = PeftModel.from_pretrained(base, run.adapter)
    assert any("lora_B" in name for name, _ in loaded.named_parameters())


def test_cancel_leaves_no_process_of_the_run(runs) -> None:
    """The engine, torchrun and both ranks (torchrun starts each in a session and process group of its own, which a
    signal to the engine's group does not reach) are all gone once Cancel returns, with no other process left in
    their process groups, and the folder is deleted."""
    assert len(runs.family) >= 4
    groups = {process.pid for process in runs.family}  # the engine's group (torchrun in it) and each rank's

    def left() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter():
            try:
                if os.getpgid(process.pid) in groups and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return found

    try:
        wait_for(lambda: not left(), timeout=2)  # SIGKILLed: gone within moments, never to train on
    except AssertionError:
        pytest.fail(f"left after Cancel: {[process.cmdline()[:5] for process in left()]}")
    assert not runs.cancelled.exists() and runs.ctx.jobs.children() == []


def test_a_stopped_two_process_run_resumes_in_one_process_where_it_stopped_in_the_data(runs, tmp_path) -> None:
    """DDP's checkpoint does not depend on the number of processes, only the global batch and the data position do
    (engine/train/world.py): the QLoRA run stopped in 2 processes of batch 2 resumes in 1 process of batch 4, says
    so, and its steps after the stop have the losses, and its adapter the weights, of one process trained on the same
    global batches from the start."""
    run, at = runs.stopped, runs.stopped_at
    raw = yaml.safe_load(run.config.read_text(encoding="utf-8"))
    raw["distributed"]["nproc_per_node"] = 1
    raw["train"].update(batch_size=4, max_steps=at + 2)
    run.config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        done = train_in_process("--resume", str(run.path))
    finally:  # devices: cpu hid the GPUs from this process (main sets it before torch trains): given back
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        if hidden is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = hidden
    assert done.returncode == 0, done.stderr[-3000:]
    said = run.log.read_text(encoding="utf-8")
    assert (f"checkpoint-{at} was written by 2 process(es) and resumes in 1: the global batch stays 4 rows "
            "(2 x 2 x 1 before, 1 x 4 x 1 now") in said
    epoch, row = at // 4 + 1, at % 4 * 4 + 1  # 16 rows: 4 steps of 4 rows an epoch
    assert f"training continues at step {at + 1} with row {row} of epoch {epoch}" in said
    assert json.loads((run.checkpoints / f"checkpoint-{at + 2}" / "world.json").read_text())["processes"] == 1

    reference = write_config(tmp_path / "reference.yaml", Path(raw["model"]["name_or_path"]), Path(raw["data"]["path"]),
                             tmp_path / "reference", method={"name": "qlora", "lora_dropout": 0.0},
                             train={**TRAIN, "batch_size": 4, "max_steps": at + 2})
    assert run_train_in_process(load_config(reference)) == 0
    resumed, alone = losses(run), losses(RunDir(tmp_path / "reference"))
    assert sorted(resumed) == sorted(alone) == list(range(1, at + 3))
    for step in alone:  # before the stop in 2 processes, after it in 1
        assert resumed[step] == pytest.approx(alone[step], rel=1e-3), (step, resumed, alone)
    a = load_file(run.adapter / "adapter_model.safetensors")
    b = load_file(RunDir(tmp_path / "reference").adapter / "adapter_model.safetensors")
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)


def losses(run: RunDir) -> dict[int, float]:
    """The train loss of each step, the last attempt's where a resume trained a step again."""
    return {e.step: e.values["loss"] for e in read_events(run.events) if isinstance(e, Metrics) and "loss" in e.values}


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
