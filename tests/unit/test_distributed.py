"""`devices` and `distributed` (engine/config_distributed.py) and the torchrun launcher (engine/train/launch.py),
without starting a process: the config's sentences, `launch.py train --print-command` for one machine and for
several, a rank above 0 that reports nothing to the run folder, and the sentence for a rank that died, read from
torchrun's own summary."""

from __future__ import annotations

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
    assert lines[0] == "# node 0 (keeps the run folder)" and lines[2] == "# node 1"
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
