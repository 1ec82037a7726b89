"""Several machines, with or without a shared filesystem: what the nodes of a run agree on before they train.

A run of several nodes (torchrun's GROUP_WORLD_SIZE above 1) starts one torchrun on each node (the printed
command). Before anything loads, every rank meets the others in torchrun's own store (`torch.distributed.rendezvous
("env://")`: the TCPStore at MASTER_ADDR:MASTER_PORT that torch.distributed itself uses next), and each node's local
rank 0 posts a report of its node (`Report`):

- whether it sees node 0's run folder: node 0 writes `RUN/ranks/.node-0-NONCE` and posts NONCE; each other node
  looks for that file in its own run folder. The name is new each time, so an NFS client asks its server instead of
  answering from a cache: a node that sees it shares node 0's folder; one that does not has a disk of its own.
- its problem, in one sentence: node 0's the output_dir check (engine/train/output_dir.py), another node's a config
  it cannot read (a node whose command names a config it does not have takes node 0's, which node 0 posts);
- on `--resume`, the steps of the complete checkpoints in its run folder.

Every rank reads every report and decides alike (`decide`): a problem ends every node with the same sentence; the
folders are shared where every node sees node 0's; node 0's `distributed.save_on_each_node` (every node follows
it), auto by default, has each node's local rank 0 keep the checkpoints (transformers' `save_on_each_node`) where
they are not, while events, status, metrics and the final weights stay node 0's (rank 0's). A resume of nodes with
their own folders needs the same newest checkpoint on every node: one that lacks it, or newest checkpoints at
different steps, are refused with a sentence that says what to copy where; a fresh run over an earlier run's
checkpoints on a node's own disk is refused as node 0's output_dir check refuses its folder.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from engine.config import ConfigError, RunConfig, parse_config
from engine.jobs import rundir
from engine.jobs.reporter import RANKS, rank
from engine.sentences import said

KEY = "workbench/nodes/"  # the store's keys: KEY + node rank
WAIT_S = 300  # how long a node waits for the others' reports (they start within seconds of each other)


@dataclass(frozen=True)
class Report:
    """What a node's local rank 0 says of its node. `folder`: its run folder; `sees_node_0`: whether node 0's marker
    is in it; `checkpoints`: the steps of its complete checkpoints (on --resume); `config`: node 0's config (YAML),
    for a node that has none; `nonce`: node 0's marker."""

    node: int
    host: str
    folder: str = ""
    sees_node_0: bool = True
    problem: str | None = None
    checkpoints: list[int] = field(default_factory=list)
    config: str | None = None
    nonce: str = ""
    setting: bool | str = "auto"  # node 0's distributed.save_on_each_node, which every node follows


@dataclass(frozen=True)
class Decision:
    shared: bool  # every node sees node 0's run folder
    save_on_each_node: bool  # each node's local rank 0 keeps checkpoints in its own folder
    line: str  # the run log's line


_decided: Decision | None = None  # this process's decision (a rank of a run of several nodes), once made


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def several_nodes() -> bool:
    """Whether this process is a rank of a run that torchrun started on several nodes."""
    return env_int("GROUP_WORLD_SIZE", 1) > 1


def decided() -> Decision | None:
    return _decided


def with_decision(line: str) -> str:
    """`line` (the strategy's) with the decision's words for the run log ("; nodes: ...") where nodes decided."""
    return said("engine.log.joined", first=line, then=_decided.line) if _decided is not None else line


def save_on_each_node() -> bool:
    return _decided is not None and _decided.save_on_each_node


def keeps_own_folder() -> bool:
    """Whether this process writes the checkpoints (and config.yaml) of its node's own run folder: the local rank 0
    of a node other than 0 where each node keeps its checkpoints (rank 0 writes node 0's as always)."""
    return save_on_each_node() and not _decided.shared and env_int("LOCAL_RANK", 0) == 0 and rank() != 0


def writes_checkpoints() -> bool:
    """Whether this process writes (and tidies) the checkpoints of the run folder it sees."""
    return rank() == 0 or keeps_own_folder()


def checkpoint_steps(folder: Path) -> list[int]:
    return [rundir.checkpoint_step(p) for p in rundir.RunDir(folder).all_checkpoints() if rundir.checkpoint_complete(p)]


def torchrun_store() -> Any:
    """The store of torchrun's rendezvous, which torch.distributed's process group uses next (env://)."""
    import torch.distributed as dist

    return next(dist.rendezvous("env://", timeout=timedelta(seconds=WAIT_S)))[0]


def agree(path: Path, read: Callable[[], RunConfig], check: Callable[[RunConfig], None], resume: str | None,
          store: Any = None, place: tuple[int, int, bool] | None = None, overwrite: bool = False) -> RunConfig:
    """Meet the other nodes' ranks and return the config this rank trains (its own, or node 0's where its command
    names none it has); ConfigError with the sentence every node ends with where a node cannot train or resume.
    `path` is this node's config file and `read` reads it, `check` is node 0's output_dir check, `resume` the
    --resume folder, `overwrite` whether --overwrite was given; `store` torchrun's (by default) and `place` (node,
    nodes, whether this is the node's local rank 0) torchrun's environment's."""
    global _decided
    store = store if store is not None else torchrun_store()
    node, nodes, leader = place or (env_int("GROUP_RANK", 0), env_int("GROUP_WORLD_SIZE", 1),
                                    env_int("LOCAL_RANK", 0) == 0)
    config, problem = own_config(path, read, node)
    marker = None
    if node == 0 and leader:
        if config is not None and problem is None:
            problem = refusal_of(check, config)
        nonce = uuid.uuid4().hex
        if config is not None:
            marker = Path(config.output_dir) / RANKS / f".node-0-{nonce}"
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(socket.gethostname(), encoding="utf-8")
        post(store, report(0, config, problem, resume, nonce=nonce, node_0=config))
    first = fetch(store, 0)
    if config is None and problem is None and first.config is not None:  # no config of its own: node 0's
        config = node_zero_config(first.config, resume)
    if leader and node:
        sees = config is not None and (Path(config.output_dir) / RANKS / f".node-0-{first.nonce}").is_file()
        if problem is None and config is not None and not (sees or resume or overwrite):
            problem = earlier_run(node, Path(config.output_dir))
        post(store, report(node, config, problem, resume, sees=sees))
    reports = [first, *(fetch(store, other) for other in range(1, nodes))]
    if marker is not None:  # every node has looked
        marker.unlink(missing_ok=True)
    decision, refusal = decide(reports, first.setting, resume is not None)
    if refusal is not None or config is None:
        raise ConfigError([refusal or f"node {node} has no config at {path} and node 0 sent none: copy node 0's "
                                      f"config to {path} on node {node}, then start every node's command again."])
    _decided = decision
    return config


def earlier_run(node: int, folder: Path) -> str | None:
    """The sentence for a fresh run on a node whose own run folder holds an earlier run's checkpoints (node 0's
    output_dir check refuses its own folder alike), else None."""
    if not rundir.RunDir(folder).all_checkpoints():
        return None
    return (f"node {node}'s run folder {folder} holds the checkpoints of an earlier run: start afresh with "
            f"--overwrite (deletes them), or continue that run with --resume {folder}.")


def own_config(path: Path, read: Callable[[], RunConfig], node: int) -> tuple[RunConfig | None, str | None]:
    """(this node's config, None), (None, None) for a node other than 0 without the config file, or (None, the
    sentence) for one it cannot read."""
    if node and not path.is_file():
        return None, None
    try:
        return read(), None
    except ConfigError as error:
        return None, f"node {node}: {issues(error)}"


def issues(error: ConfigError) -> str:
    return " ".join(map(str, error.issues))


def node_zero_config(text: str, resume: str | None) -> RunConfig:
    config = parse_config(yaml.safe_load(text), source="node 0's config")
    if resume:
        config.train.resume = True
    return config


def refusal_of(check: Callable[[RunConfig], None], config: RunConfig) -> str | None:
    try:
        check(config)
    except ConfigError as error:
        return issues(error)
    return None


def report(node: int, config: RunConfig | None, problem: str | None, resume: str | None, sees: bool = True,
           nonce: str = "", node_0: RunConfig | None = None) -> Report:
    """A node's report; node 0's (`node_0`: its config) also carries its config and its save_on_each_node."""
    folder = Path(config.output_dir) if config is not None else None
    steps = checkpoint_steps(folder) if resume and folder is not None else []
    shared = {"config": node_0.to_yaml(), "setting": node_0.distributed.save_on_each_node} if node_0 else {}
    return Report(node, socket.gethostname(), str(folder or ""), sees, problem, steps, nonce=nonce, **shared)


def post(store: Any, found: Report) -> None:
    store.set(f"{KEY}{found.node}", json.dumps(asdict(found)))


def fetch(store: Any, node: int) -> Report:
    """Node `node`'s report, waited for (ConfigError naming the node where it never comes)."""
    try:
        store.wait([f"{KEY}{node}"], timedelta(seconds=WAIT_S))
    except RuntimeError:  # the store's timeout (DistStoreError)
        raise ConfigError([f"node {node} did not report within {WAIT_S} s of the rendezvous: look at its terminal "
                           "and its run folder's ranks/ logs, then start every node's command again."]) from None
    return Report(**json.loads(store.get(f"{KEY}{node}")))


def decide(reports: list[Report], setting: bool | str, resuming: bool) -> tuple[Decision, str | None]:
    """What every rank does with the nodes' reports: (the decision, the sentence refusing the run or None)."""
    shared = all(found.sees_node_0 for found in reports)
    each = (not shared) if setting == "auto" else bool(setting)
    folders = said("engine.log.nodes_shared") if shared else said("engine.log.nodes_own")
    keeps = said("engine.log.nodes_each_keeps") if each else said("engine.log.nodes_node_0_keeps")
    decision = Decision(shared, each, said("engine.log.nodes", count=len(reports), folders=folders, keeps=keeps))
    problems = [found.problem for found in reports if found.problem]
    if problems:
        return decision, problems[0]
    if shared and setting is True:
        return decision, (f"distributed.save_on_each_node is true but every node sees node 0's run folder "
                          f"{reports[0].folder} (a shared filesystem), where the nodes would write the same "
                          "checkpoint files at once: set it to auto or false.")
    return decision, checkpoint_problem(reports) if resuming and not shared else None


def checkpoint_problem(reports: list[Report]) -> str | None:
    """The sentence refusing a resume of nodes with their own folders whose newest checkpoints differ, else None."""
    newest = {found.node: max(found.checkpoints, default=None) for found in reports}
    steps = [step for step in newest.values() if step is not None]
    if not steps or len(set(newest.values())) == 1:
        return None  # none at all: node 0's check said so
    best = max(steps)
    source = next(found for found in reports if newest[found.node] == best)
    behind = [found for found in reports if newest[found.node] != best]
    copy = "; ".join(f"into {found.folder}/checkpoints on node {found.node}" for found in behind)
    what = (f"copy checkpoint-{best} from node {source.node}'s {source.folder}/checkpoints {copy} (beside the "
            "rng_state files there, its processes' random states)")
    lacking = [found for found in behind if newest[found.node] is None]
    if lacking:
        return (f"node {lacking[0].node} has no complete checkpoint in {lacking[0].folder}/checkpoints to resume "
                f"from (its disk is not node {source.node}'s): {what}, then start every node's command again.")
    common = set.intersection(*(set(found.checkpoints) for found in reports))
    held = ", ".join(f"node {node}: checkpoint-{step}" for node, step in newest.items())
    other = (f", or delete the checkpoints after checkpoint-{max(common)} so that every node resumes from it"
             if common else "")
    return (f"The nodes' newest checkpoints are at different steps ({held}), so their processes would not resume "
            f"together: {what}{other}, then start every node's command again.")
