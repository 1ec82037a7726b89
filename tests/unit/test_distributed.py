"""`devices` and `distributed` (engine/config_distributed.py) and the torchrun launcher (engine/train/launch.py),
without starting a process: the config's sentences, `launch.py train --print-command` for one machine and for
several, a rank above 0 that reports nothing to the run folder, and the sentence for a rank that died, read from
torchrun's own summary."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from engine.config import ConfigError, RunConfig, load_config
from engine.jobs.reporter import JobReporter, rank_log
from engine.jobs.rundir import RunDir
from engine.train import launch
from engine.train.recipe import main as train_main
from tests.cli import MEMORISE, write_config, write_rows


def run_config(tmp_path: Path, **distributed) -> RunConfig:
    return RunConfig(model={"name_or_path": "m"}, data={"path": "d.json"}, output_dir=str(tmp_path / "run"),
                     distributed=distributed)


def config_file(tmp_path: Path, distributed: str) -> Path:
    data = write_rows(tmp_path / "rows.json", MEMORISE)
    path = write_config(tmp_path / "run.yaml", tmp_path / "model", data, tmp_path / "run")
    path.write_text(path.read_text(encoding="utf-8") + distributed, encoding="utf-8")
    return path


def test_one_process_is_the_default_and_has_no_problem(tmp_path) -> None:
    config = run_config(tmp_path)
    assert config.devices == "auto" and config.distributed.world_size == 1 and config.distributed.strategy == "auto"
    assert not [p for p in config.problems() if "devices" in p or "distributed" in p]


@pytest.mark.parametrize(("devices", "distributed", "said"), [
    ("auto", {"nnodes": 2, "node_rank": 2, "master_addr": "10.0.0.1"}, "number the nodes from 0 to 1"),
    ("cpu", {"strategy": "fsdp"}, "fsdp needs GPUs: on the CPU the Trainer's FSDP integration (accelerate)"),
    ("gpu0", {}, "write auto, cpu, or GPU indices"),
    ("0", {"nproc_per_node": 2}, "list one GPU per process"),
])
def test_each_impossible_setting_is_one_sentence_that_says_what_to_change(tmp_path, devices, distributed, said):
    problems = [p for p in run_config(tmp_path, **distributed).model_copy(update={"devices": devices}).problems()
                if said in p]
    assert len(problems) == 1 and problems[0].endswith("."), problems


def test_deepspeed_not_installed_and_qlora_in_several_processes_are_said(tmp_path, monkeypatch) -> None:
    from engine import config_distributed

    monkeypatch.setattr(config_distributed, "find_spec", lambda _name: None)
    issues = run_config(tmp_path, strategy="deepspeed").problems()
    assert any("deepspeed is not installed: pip install deepspeed" in p for p in issues), issues
    qlora = RunConfig(model={"name_or_path": "m"}, method={"name": "qlora"}, data={"path": "d.json"},
                      output_dir=str(tmp_path / "run"), distributed={"nproc_per_node": 2, "strategy": "fsdp"})
    assert any(p.startswith("QLoRA with distributed.strategy fsdp is not available yet") for p in qlora.problems())
    for strategy in ("ddp", "deepspeed"):  # DDP trains it (tests/engine/test_distributed.py), ZeRO-2/3 too
        qlora.distributed.strategy = strategy  # (tests/bench/distributed_match.py: zero2-qlora, zero3-qlora)
        assert not [p for p in qlora.problems() if "QLoRA" in p], strategy


def test_a_bad_distributed_key_is_refused_when_the_config_loads(tmp_path) -> None:
    with pytest.raises(ConfigError, match="node_rank"):
        load_config(config_file(tmp_path, "distributed:\n  nnodes: 2\n  node_rank: 2\n"))


def test_several_machines_without_node_0s_address_are_refused_for_torchrun_not_for_slurm(tmp_path, capsys,
                                                                                        monkeypatch) -> None:
    path = config_file(tmp_path, "distributed:\n  nnodes: 2\n")
    assert train_main([str(path), "--print-command"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: config: distributed.nnodes is 2 but distributed.master_addr is not set: give the address of node 0 "
        "that the other machines can reach, or under Slurm print a script that takes it from the allocation with "
        "--print-command --launcher slurm.")
    assert train_main([str(path), "--print-command", "--launcher", "slurm"]) == 0
    assert capsys.readouterr().out.startswith("#!/bin/bash\n")
    monkeypatch.setenv(launch.RANK_BODY_ENV, "1")  # a rank the Slurm script's torchrun started: it has its rendezvous
    assert train_main([str(path), "--print-command"]) == 0


def test_print_command_on_one_machine_is_torchrun_with_the_rank_marker(tmp_path, capsys) -> None:
    path = config_file(tmp_path, "devices: cpu\ndistributed:\n  nproc_per_node: 2\n")
    assert train_main([str(path), "--print-command"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    words = shlex.split(lines[0])
    assert words[:2] == ["CUDA_VISIBLE_DEVICES=", f"{launch.RANK_BODY_ENV}=1"]
    assert words[2:5] == [sys.executable, "-m", "torch.distributed.run"]
    assert {"--nproc-per-node=2", "--standalone", "--max-restarts=0"} <= set(words)
    assert words[-3:] == [str(launch.LAUNCH), "train", str(path.resolve())]
    assert not (tmp_path / "run").exists()  # printing writes nothing


def test_print_command_for_two_machines_gives_each_node_its_command(tmp_path, capsys) -> None:
    path = config_file(tmp_path, "distributed:\n  nproc_per_node: 4\n  nnodes: 2\n  master_addr: 10.0.0.1\n"
                                 "  master_port: 29600\n")
    assert train_main([str(path), "--print-command", "--overwrite"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "# node 0 (keeps the run folder)" and lines[2].startswith("# node 1 (takes node 0's config")
    for node, line in ((0, lines[1]), (1, lines[3])):
        words = shlex.split(line)
        assert {f"--node-rank={node}", "--nnodes=2", "--nproc-per-node=4", "--master-addr=10.0.0.1",
                "--master-port=29600"} <= set(words)
        assert "--standalone" not in words and words[-2:] == [str(path.resolve()), "--overwrite"]


def test_print_command_of_one_process_is_the_plain_command(tmp_path, capsys) -> None:
    path = config_file(tmp_path, "")
    assert train_main([str(path), "--print-command"]) == 0
    assert shlex.split(capsys.readouterr().out) == [sys.executable, str(launch.LAUNCH), "train", str(path.resolve())]


def test_a_config_for_several_processes_started_as_one_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(launch.LaunchError, match="asks for 2 processes .* but was started as 1: start it with"):
        launch.check_world(run_config(tmp_path, nproc_per_node=2))
    monkeypatch.setenv("WORLD_SIZE", "2")
    launch.check_world(run_config(tmp_path, nproc_per_node=2))


def test_a_rank_above_0_writes_no_events_and_no_status_but_its_own_log(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "1")
    run = RunDir(tmp_path / "run")
    with JobReporter(run, echo=False) as reporter:
        reporter.status("training")
        reporter.info("a line of rank 1")
    assert not run.events.exists() and not run.status.exists() and not run.log.exists()
    assert "a line of rank 1" in rank_log(run.path, 1).read_text(encoding="utf-8")


TORCHRUN_SUMMARY = """
Root Cause (first observed failure):
[0]:
  time      : 2026-12-05_06:27:40
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 31065)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 31065
"""


def test_a_dead_rank_is_named_with_its_signal_and_its_log(tmp_path) -> None:
    config = run_config(tmp_path, nproc_per_node=2)
    run = RunDir(Path(config.output_dir))
    (run.path / "ranks").mkdir(parents=True)
    (run.path / "ranks" / launch.TORCHRUN_LOG).write_text(TORCHRUN_SUMMARY, encoding="utf-8")
    sentence = launch.failure(config, run, 1, {"state": "training"})
    assert sentence == (f"Rank 1 of 2 was killed by SIGKILL, which ended the run: its log is "
                        f"{rank_log(run.path, 1)}.")


def test_rank_0s_own_error_is_the_sentence_where_it_said_one(tmp_path) -> None:
    config = run_config(tmp_path, nproc_per_node=2)
    run = RunDir(Path(config.output_dir))
    (run.path / "ranks").mkdir(parents=True)
    said = "error: config: output_dir holds a run: choose another output_dir.\n"
    (run.path / "ranks" / launch.TORCHRUN_LOG).write_text(
        said + TORCHRUN_SUMMARY.replace("rank      : 1", "rank      : 0").replace("-9 (pid", "1 (pid"),
        encoding="utf-8")
    assert launch.failure(config, run, 1, {}) == "config: output_dir holds a run: choose another output_dir."


LOST_PEER = """error: RuntimeError: [gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer.
Failures:
[1]:
  time      : 2026-12-05_11:29:02
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 19114)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 19114
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-05_11:29:02
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 19113)
  error_file: <N/A>
"""


def test_a_rank_killed_from_outside_is_blamed_not_rank_0s_lost_connection(tmp_path) -> None:
    """kill -9 of rank 1 (torchrun's summary as it was seen): rank 0's collective then fails on the lost peer in the
    same second, and torchrun names rank 0 as the first observed failure; the killed rank is the cause. Ranks that
    torchrun itself ended (SIGTERM) are not blamed."""
    config = run_config(tmp_path, nproc_per_node=2)
    run = RunDir(Path(config.output_dir))
    (run.path / "ranks").mkdir(parents=True)
    (run.path / "ranks" / launch.TORCHRUN_LOG).write_text(LOST_PEER, encoding="utf-8")
    said = {"state": "failed", "error": "RuntimeError: Read error: Connection reset by peer."}
    assert launch.failure(config, run, 1, said) == (f"Rank 1 of 2 was killed by SIGKILL, which ended the run: its "
                                                   f"log is {rank_log(run.path, 1)}.")
    ended = LOST_PEER.replace("-9 (pid: 19114)  (SIGKILL)", "-15 (pid: 19114)  (SIGTERM)")
    (run.path / "ranks" / launch.TORCHRUN_LOG).write_text(ended, encoding="utf-8")
    assert launch.failure(config, run, 1, said) == said["error"]


def test_resuming_with_another_number_of_processes_is_refused_and_the_same_number_is_not(tmp_path) -> None:
    checkpoint = tmp_path / "checkpoint-36"
    checkpoint.mkdir()
    for index in (0, 1):
        (checkpoint / f"rng_state_{index}.pth").write_bytes(b"")
    assert launch.resume_problem(checkpoint, run_config(tmp_path, nproc_per_node=2)) is None
    said = launch.resume_problem(checkpoint, run_config(tmp_path))
    assert said.startswith("checkpoint-36 was written by 2 process(es) and this run asks for 1: resume it with")
    (checkpoint / "rng_state_1.pth").unlink()
    (checkpoint / "rng_state_0.pth").rename(checkpoint / "rng_state.pth")
    assert launch.resume_problem(checkpoint, run_config(tmp_path)) is None


def checkpoint_of(tmp_path: Path, step: int, **world) -> Path:
    """checkpoint-STEP as the Trainer leaves it, with the world.json the engine writes beside its weights."""
    from engine.train.world import WORLD_JSON

    checkpoint = tmp_path / f"checkpoint-{step}"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text(f'{{"global_step": {step}}}', encoding="utf-8")
    values = {"processes": 2, "batch_size": 2, "accumulation": 1, "strategy": "ddp", "sampler": "random", **world}
    (checkpoint / WORLD_JSON).write_text(json.dumps(values), encoding="utf-8")
    return checkpoint


def one_process(tmp_path: Path, batch_size: int = 4, accumulation: int = 1, **distributed) -> RunConfig:
    return RunConfig(model={"name_or_path": "m"}, data={"path": "d.json"}, output_dir=str(tmp_path / "run"),
                     train={"batch_size": batch_size, "gradient_accumulation_steps": accumulation},
                     distributed=distributed)


def test_ddp_resumes_in_another_number_of_processes_with_the_same_global_batch_and_says_where(tmp_path) -> None:
    from engine.train import world

    checkpoint = checkpoint_of(tmp_path, 6)
    config = one_process(tmp_path)  # 1 x 4 x 1 where it trained 2 x 2 x 1
    assert world.problem(checkpoint, config) is None
    line = world.resumed(checkpoint, config, rows=16, sampler="random")
    assert line.startswith("checkpoint-6 was written by 2 process(es) and resumes in 1: the global batch stays 4 rows "
                           "(2 x 2 x 1 before, 1 x 4 x 1 now")
    assert "continues at step 7 with row 9 of epoch 2 (4 step(s) of 4 rows an epoch, one shuffled order" in line
    assert world.resumed(checkpoint, one_process(tmp_path, 2, nproc_per_node=2), 16, "random") is None  # the same
    assert world.problem(checkpoint, one_process(tmp_path, 2, 2)) is None  # accumulation makes up the batch


@pytest.mark.parametrize(("world_json", "config", "said"), [
    ({}, {"batch_size": 2}, "with a global batch of 2 rows (1 x 2 x 1: processes x train.batch_size x "
     "train.gradient_accumulation_steps) where it trained with 4 (2 x 2 x 1): set train.batch_size to 4, so that"),
    ({"batch_size": 3, "accumulation": 2}, {"batch_size": 1, "accumulation": 2, "nproc_per_node": 4},
     "a global batch of 8 rows (4 x 1 x 2: processes x train.batch_size x train.gradient_accumulation_steps) where it "
     "trained with 12 (2 x 3 x 2): set train.gradient_accumulation_steps to 3"),
    ({"batch_size": 3}, {"batch_size": 2, "nproc_per_node": 4}, "where it trained with 6 (2 x 3 x 1): make processes x "
     "train.batch_size x train.gradient_accumulation_steps 6, so that"),
    ({"strategy": "deepspeed"}, {}, "but its strategy DeepSpeed ZeRO keeps optimizer states split per process in "
     "checkpoints: resume it with 2 process(es)"),
    ({"processes": 1, "batch_size": 8}, {"batch_size": 4, "nproc_per_node": 2, "strategy": "fsdp"},
     "but this run's strategy FSDP keeps optimizer states split"),
])
def test_another_number_of_processes_is_refused_where_the_checkpoint_would_not_continue_alike(
        tmp_path, world_json, config, said) -> None:
    from engine.train import world

    checkpoint = checkpoint_of(tmp_path, 6, **world_json)
    batch, accumulation = config.pop("batch_size", 4), config.pop("accumulation", 1)
    found = world.problem(checkpoint, one_process(tmp_path, batch, accumulation, **config))
    assert found is not None and said in found, found
    with pytest.raises(ConfigError, match="checkpoint-6 was written by"):
        world.resumed(checkpoint, one_process(tmp_path, batch, accumulation, **config), 16, "random")


def test_length_grouped_batches_resume_in_another_number_of_processes_only_at_the_end_of_an_epoch(tmp_path) -> None:
    from engine.train import world

    inside = checkpoint_of(tmp_path, 6, sampler="group_by_length")  # 4 steps an epoch: step 6 is inside epoch 2
    assert world.problem(inside, one_process(tmp_path)) is None  # the order is known only with the rows
    said = world.problem(inside, one_process(tmp_path), rows=16, sampler="group_by_length")
    assert "stopped in the middle of an epoch of length-grouped batches" in said
    end = checkpoint_of(tmp_path, 8, sampler="group_by_length")
    line = world.resumed(end, one_process(tmp_path), 16, "group_by_length")
    assert "continues at step 9 with row 1 of epoch 3" in line and "a new epoch of length-grouped batches" in line


def test_a_checkpoint_without_world_json_is_judged_by_its_random_states_as_before(tmp_path) -> None:
    from engine.train import world

    checkpoint = checkpoint_of(tmp_path, 6)
    (checkpoint / world.WORLD_JSON).unlink()
    for index in (0, 1):
        (checkpoint / f"rng_state_{index}.pth").write_bytes(b"")
    said = world.problem(checkpoint, one_process(tmp_path))
    assert said.startswith("checkpoint-6 was written by 2 process(es) and this run asks for 1: resume it with")
    assert world.problem(checkpoint, one_process(tmp_path, 2, nproc_per_node=2)) is None
