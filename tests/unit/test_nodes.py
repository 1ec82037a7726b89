"""What the nodes of a run agree on before they train (engine/train/nodes.py), without starting a process: each
node's agreement runs in a thread of this process, with a store that stands in for torchrun's (set, wait, get).
Whether node 0's run folder is shared (its marker seen or not), who then keeps the checkpoints, node 0's config for
a node that has none, and each sentence refusing a resume."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from engine.config import ConfigError, RunConfig, load_config
from engine.train import nodes
from engine.train.nodes import Report, decide
from tests.cli import MEMORISE, write_config, write_rows


class Store:
    """A dict behind a condition: torchrun's TCPStore as the agreement uses it."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.changed = threading.Condition()

    def set(self, key: str, value: str) -> None:
        with self.changed:
            self.values[key] = value.encode()
            self.changed.notify_all()

    def wait(self, keys: list[str], timeout: timedelta) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: all(k in self.values for k in keys), timeout.total_seconds()):
                raise RuntimeError("Wait timeout")

    def get(self, key: str) -> bytes:
        return self.values[key]


@pytest.fixture(autouse=True)
def undecided(monkeypatch) -> None:
    monkeypatch.setattr(nodes, "_decided", None)
    monkeypatch.setattr(nodes, "WAIT_S", 5)


def node_config(folder: Path, output_dir: Path, **distributed) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = write_rows(folder / "rows.json", MEMORISE)
    path = write_config(folder / "run.yaml", folder / "model", data, output_dir)
    text = "distributed:\n  nnodes: 2\n  master_addr: 127.0.0.1\n" + "".join(
        f"  {key}: {json.dumps(value)}\n" for key, value in distributed.items())
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return path


def checkpoint(run: Path, step: int) -> None:
    folder = run / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}), encoding="utf-8")


def agree_all(paths: list[Path], resume: list[Path | None] | None = None) -> list[RunConfig | ConfigError]:
    """Each node's agreement in a thread (node 0's check refuses nothing): its config, or the ConfigError raised."""
    store, found = Store(), [None] * len(paths)

    def node(number: int) -> None:
        resumed = (resume or [None] * len(paths))[number]
        try:
            found[number] = nodes.agree(paths[number], lambda: load_config(paths[number]), lambda _config: None,
                                        str(resumed) if resumed else None, store, (number, len(paths), True))
        except ConfigError as error:
            found[number] = error

    threads = [threading.Thread(target=node, args=(number,)) for number in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return found


def test_nodes_with_their_own_folders_each_keep_their_checkpoints(tmp_path) -> None:
    paths = [node_config(tmp_path / f"n{n}", tmp_path / f"n{n}" / "run") for n in (0, 1)]
    configs = agree_all(paths)
    assert [config.output_dir for config in configs] == [str(tmp_path / f"n{n}" / "run") for n in (0, 1)]
    decision = nodes.decided()
    assert decision.save_on_each_node and not decision.shared and nodes.save_on_each_node()
    assert decision.line == ("nodes: the 2 nodes each keep a run folder of their own (no shared filesystem): each "
                             "node keeps the checkpoints a resume needs in its own folder; node 0 keeps the events, "
                             "status and final weights")
    assert not list((tmp_path / "n0" / "run" / "ranks").iterdir())  # node 0's marker is gone once all looked


def test_nodes_that_share_node_0s_folder_leave_the_checkpoints_to_rank_0(tmp_path) -> None:
    run = tmp_path / "shared" / "run"
    agree_all([node_config(tmp_path / f"n{n}", run) for n in (0, 1)])
    assert nodes.decided().shared and not nodes.save_on_each_node()
    assert "share node 0's run folder: node 0 alone keeps the checkpoints" in nodes.decided().line


def test_a_fresh_run_over_an_earlier_runs_checkpoints_on_node_1s_own_disk_is_refused(tmp_path) -> None:
    runs = [tmp_path / f"n{n}" / "run" for n in (0, 1)]
    paths = [node_config(tmp_path / f"n{n}", runs[n]) for n in (0, 1)]
    checkpoint(runs[1], 7)
    found = agree_all(paths)
    assert found[0].issues == [f"node 1's run folder {runs[1]} holds the checkpoints of an earlier run: start afresh "
                               f"with --overwrite (deletes them), or continue that run with --resume {runs[1]}."]


def test_a_node_without_the_config_takes_node_0s(tmp_path) -> None:
    zero = node_config(tmp_path / "n0", tmp_path / "run", save_on_each_node=False)
    configs = agree_all([zero, tmp_path / "n1" / "missing.yaml"])
    assert configs[1] == configs[0] == load_config(zero)


def test_save_on_each_node_true_on_a_shared_folder_is_refused(tmp_path) -> None:
    found = agree_all([node_config(tmp_path / f"n{n}", tmp_path / "run", save_on_each_node=True) for n in (0, 1)])
    assert all(isinstance(error, ConfigError) for error in found)
    assert "distributed.save_on_each_node is true but every node sees node 0's run folder" in str(found[1])


def test_resume_where_node_1_lacks_the_checkpoint_is_refused_on_both_nodes_naming_it(tmp_path) -> None:
    runs = [tmp_path / f"n{n}" / "run" for n in (0, 1)]
    paths = [node_config(tmp_path / f"n{n}", runs[n]) for n in (0, 1)]
    checkpoint(runs[0], 4)
    found = agree_all(paths, resume=runs)
    assert [type(error) for error in found] == [ConfigError, ConfigError] and str(found[0]) == str(found[1])
    assert found[0].issues == [
        f"node 1 has no complete checkpoint in {runs[1]}/checkpoints to resume from (its disk is not node 0's): copy "
        f"checkpoint-4 from node 0's {runs[0]}/checkpoints into {runs[1]}/checkpoints on node 1 (beside the "
        "rng_state files there, its processes' random states), then start every node's command again."]
    checkpoint(runs[1], 4)
    assert all(isinstance(config, RunConfig) for config in agree_all(paths, resume=runs))  # the same step: agreed


def test_newest_checkpoints_at_different_steps_are_refused() -> None:
    reports = [Report(0, "a", "/r", False, checkpoints=[2, 4]), Report(1, "b", "/r", False, checkpoints=[2])]
    _, refusal = decide(reports, "auto", resuming=True)
    assert refusal == (
        "The nodes' newest checkpoints are at different steps (node 0: checkpoint-4, node 1: checkpoint-2), so their "
        "processes would not resume together: copy checkpoint-4 from node 0's /r/checkpoints into /r/checkpoints on "
        "node 1 (beside the rng_state files there, its processes' random states), or delete the checkpoints after "
        "checkpoint-2 so that every node resumes from it, then start every node's command again.")
    assert decide(reports, "auto", resuming=False)[1] is None  # a fresh run trains from the start
    shared = [Report(0, "a", "/r", True, checkpoints=[4]), Report(1, "b", "/r", True, checkpoints=[4])]
    assert decide(shared, "auto", resuming=True) == (nodes.Decision(True, False, decide(shared, "auto", True)[0].line),
                                                      None)


def test_a_nodes_problem_ends_every_node_with_its_sentence_and_false_keeps_checkpoints_on_node_0() -> None:
    reports = [Report(0, "a", "/r", problem="output_dir /r holds a run that is still training."),
               Report(1, "b", "/r", False)]
    assert decide(reports, "auto", resuming=False)[1] == "output_dir /r holds a run that is still training."
    decision, refusal = decide([Report(0, "a", "/r"), Report(1, "b", "/r", False)], False, resuming=False)
    assert refusal is None and not decision.save_on_each_node and "node 0 alone keeps the checkpoints" in decision.line


def test_the_launcher_does_not_take_an_earlier_attempts_status_for_this_ones(tmp_path, monkeypatch) -> None:
    """Node 0 started by `launch.py train --resume` (torchrun stood in for) over a stopped run, refused by the
    nodes' agreement before rank 0 wrote a status: exit 1 and the sentence as the failed status, not 0."""
    from types import SimpleNamespace

    from engine.jobs.rundir import RunDir
    from engine.train import launch

    refused = "config: node 1 has no complete checkpoint in /r/checkpoints to resume from."

    class Torchrun:
        def __init__(self, _command, stderr, **_kwargs) -> None:
            stderr.write(f"error: {refused}\n".encode())

        def wait(self) -> int:
            return 1

    monkeypatch.setattr(launch, "subprocess", SimpleNamespace(Popen=Torchrun, DEVNULL=-3))
    monkeypatch.setattr(launch.signal, "signal", lambda *_args: None)
    config = load_config(node_config(tmp_path, tmp_path / "run"))
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_status("stopped", pid=None)
    assert launch.start(config, ["--resume", str(run.path)]) == 1
    assert run.read_status()["state"] == "failed" and run.read_status()["error"] == refused
