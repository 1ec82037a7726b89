"""Two "nodes" without a shared filesystem (engine/train/nodes.py): on one machine over loopback (`nnodes: 2`, node
0 at 127.0.0.1), each with one gloo process and a workspace of its own (its own config, data and run folder, at
its own path here as two machines have theirs at the same path on their own disks), started through the commands
`--print-command` prints, node 1's with its own paths.

One module-scoped run of 3 steps (a checkpoint every step): node 1 does not see node 0's marker, so each node's local
rank 0 keeps the checkpoints (transformers' save_on_each_node) while node 0 alone writes the events, status and
adapter; the adapter equals the one a single process trains on the same global batches. Then, as if both had
stopped after step 2, checkpoint-3 is deleted on both nodes and `--resume` through the printed commands continues
both from their own checkpoint-2 to the adapter of the uninterrupted run; a node without the checkpoint is refused
with the sentence naming it (tests/unit/test_nodes.py has every sentence and the shared-folder case)."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from safetensors.torch import load_file

from engine.config import load_config
from engine.jobs.events import Progress, Status, read_events
from engine.jobs.reporter import rank_log
from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, popen_printed, run_train_in_process, train_in_process, write_config, write_rows

STEPS = 3
TRAIN = {"max_steps": STEPS, "batch_size": 2, "learning_rate": 1e-2, "lr_scheduler_type": "constant",
         "packing": "on", "report_to": "none", "save_steps": 1, "save_total_limit": 3}


@dataclass
class Nodes:
    configs: list[Path]  # node 0's and node 1's config files
    runs: list[RunDir]  # their run folders
    adapter: dict[str, torch.Tensor]  # node 0's adapter after the 3 steps


def node_configs(home: Path, model: Path) -> list[Path]:
    with socket.socket() as probe:  # a free port for node 0's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configs = []
    for node in (0, 1):
        folder = home / f"node-{node}"
        folder.mkdir()
        data = write_rows(folder / "rows.json", MEMORISE * 2)
        path = write_config(folder / "run.yaml", model, data, folder / "run", method={"lora_dropout": 0.0},
                            train=TRAIN)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw.update(devices="cpu", distributed={"nnodes": 2, "master_addr": "127.0.0.1", "master_port": port})
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        configs.append(path.resolve())
    return configs


def printed(*args: str) -> list[str]:
    """Each node's command line that `python launch.py train ARGS --print-command` prints."""
    found = train_in_process(*args, "--print-command")
    assert found.returncode == 0, found.stderr
    return [line for line in found.stdout.splitlines() if line and not line.startswith("#")]


def run_nodes(lines: list[str], node_1: dict[str, str]) -> list[tuple[int, str]]:
    """Node 0's and node 1's printed lines started at once (node 1's with its own paths, `node_1`), waited for:
    each one's exit code and stderr. A test that fails leaves no node running."""
    started = [popen_printed(lines[0]), popen_printed(lines[1], node_1)]
    try:
        ended = [process.communicate(timeout=180) for process in started]
    finally:
        for process in (process for process in started if process.poll() is None):
            for left in [*psutil.Process(process.pid).children(recursive=True), process]:
                left.kill()
    return [(process.returncode, err) for process, (_, err) in zip(started, ended, strict=True)]


def weights(run: RunDir) -> dict[str, torch.Tensor]:
    return load_file(run.adapter / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def nodes(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Nodes:
    configs = node_configs(tmp_path_factory.mktemp("nodes"), tiny_model)
    ended = run_nodes(printed(str(configs[0])), {str(configs[0]): str(configs[1])})
    assert [code for code, _ in ended] == [0, 0], [err[-3000:] for _, err in ended]
    runs = [RunDir(config.parent / "run") for config in configs]
    return Nodes(configs, runs, weights(runs[0]))


def test_each_node_keeps_its_checkpoints_and_node_0_alone_the_events_and_adapter(nodes, tmp_path) -> None:
    zero, one = nodes.runs
    assert [e.state for e in read_events(zero.events) if isinstance(e, Status)][-1] == "completed"
    assert "nodes: the 2 nodes each keep a run folder of their own (no shared filesystem): each node keeps" in (
        zero.log.read_text(encoding="utf-8"))
    for run, own in ((zero, "rng_state_0.pth"), (one, "rng_state_1.pth")):
        checkpoint = run.last_checkpoint()  # complete: trainer_state.json written last
        assert checkpoint is not None and checkpoint.name == f"checkpoint-{STEPS}"
        names = {path.name for path in checkpoint.iterdir()}
        assert {"adapter_model.safetensors", "optimizer.pt", "world.json", own} <= names
    assert not one.events.exists() and not one.status.exists() and not one.adapter.exists()
    assert one.config.is_file()  # what node 1's --resume reads
    # the same global batches (batch 2 on each node) in one process of batch 4: the same adapter
    single = write_config(tmp_path / "one.yaml", *yaml_paths(nodes.configs[0]), tmp_path / "one",
                          method={"lora_dropout": 0.0}, train={**TRAIN, "batch_size": 4, "save_steps": 100})
    assert run_train_in_process(load_config(single)) == 0
    reference = weights(RunDir(tmp_path / "one"))
    for key in reference:
        torch.testing.assert_close(nodes.adapter[key], reference[key], rtol=1e-4, atol=1e-5)


def yaml_paths(config: Path) -> tuple[Path, Path]:
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    return Path(raw["model"]["name_or_path"]), Path(raw["data"]["path"])


def test_resume_continues_both_nodes_from_their_own_checkpoint_to_the_same_adapter(nodes) -> None:
    zero, one = nodes.runs
    for run in (zero, one):  # as if both had stopped after step 2
        shutil.rmtree(run.checkpoints / f"checkpoint-{STEPS}")
    ended = run_nodes(printed("--resume", str(zero.path)), {str(zero.path): str(one.path)})
    assert [code for code, _ in ended] == [0, 0], [err[-3000:] for _, err in ended]
    said = f"resuming from checkpoint-{STEPS - 1}"
    assert said in zero.log.read_text(encoding="utf-8") and said in rank_log(one.path, 1).read_text(encoding="utf-8")
    events = read_events(zero.events)
    assert [e.step for e in events if isinstance(e, Progress)][-1] == STEPS
    assert [e.state for e in events if isinstance(e, Status)][-1] == "completed"
    assert (one.checkpoints / f"checkpoint-{STEPS}" / "trainer_state.json").is_file()  # node 1 trained step 3 too
    resumed = weights(zero)
    for key in nodes.adapter:
        torch.testing.assert_close(resumed[key], nodes.adapter[key], rtol=1e-4, atol=1e-5)
