"""A run folder written before schema versions (tests/fixtures/old_workspace) still lists, charts, chats and
exports through the product's own code paths, and a newer release's config gets one sentence, not a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.jobs.rundir import RunDir
from engine.sampling import SamplingConfig
from tests.cli import engine_process_state_kept, launch
from tests.old_workspace import RUN_NAME, copy_old_workspace
from webui.jobs.chat_client import ChatClient
from webui.jobs.runs import RunManager
from webui.jobs.scheduler import Scheduler

NEWER = ("was written by a newer PEFT Workbench (schema_version 99; this one reads up to 2): update PEFT Workbench "
         "to open it.")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_old_workspace(tmp_path_factory.mktemp("old").resolve() / "ws")


@pytest.fixture(scope="module")
def manager(workspace: Path) -> RunManager:
    scheduler = Scheduler(workspace)
    yield RunManager(scheduler)
    scheduler.shutdown()


@pytest.fixture
def run(workspace: Path) -> RunDir:
    return RunDir(workspace / "runs" / RUN_NAME)


def test_the_old_run_lists_as_completed_with_its_figures(manager: RunManager, run: RunDir) -> None:
    metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
    [info] = manager.list()
    assert (info.name, info.state, info.damaged, info.error) == (RUN_NAME, "completed", False, None)
    assert (info.method, info.dataset) == ("lora", "identity_alpaca.json")
    assert Path(info.model).is_dir()  # the recorded checkout, relocated to this one
    assert (info.train_loss, info.eval_loss) == (metrics["train_loss"], metrics["eval_loss"])


def test_the_old_run_charts_its_losses(manager: RunManager) -> None:
    snap = manager.monitor(RUN_NAME).refresh()
    assert snap.state == "completed"
    assert [step for step, _ in snap.train_loss] == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in snap.eval_loss] == [3, 6]
    assert all(loss > 0 for _, loss in snap.train_loss + snap.eval_loss)


def test_the_old_runs_adapter_chats(run: RunDir, tmp_path: Path) -> None:
    """The page's chat client starts `python -m engine chat --worker`, loads the run and answers a message."""
    client = ChatClient(tmp_path / "chat.log")
    try:
        loaded = client.load(None, {"ft": str(run.path)})
        assert loaded["adapters"] == ["ft"], loaded
        question = [{"role": "user", "content": "Who are you?"}]
        *_, reply = client.generate(question, "ft", sampling=SamplingConfig(max_new_tokens=8))
        assert reply.strip(), (tmp_path / "chat.log").read_text(encoding="utf-8")
    finally:
        client.stop()


def test_the_old_run_exports_a_model_that_loads(run: RunDir, tmp_path: Path) -> None:
    """Through what `launch.py export RUN --out OUT` runs, in this process (the command's process: test_export.py and
    test_a_newer_releases_run_says_so below)."""
    from transformers import AutoModelForCausalLM

    from engine.export.cli import main as export

    out = tmp_path / "merged"
    with engine_process_state_kept():  # the export's SIGTERM handler
        assert export([str(run.path), "--out", str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers >= 1 and not hasattr(model, "peft_config")


def test_a_newer_releases_run_says_so(tmp_path: Path) -> None:
    """Planted in a copy: the list shows the run as damaged with the sentence; the CLI prints it and exits."""
    workspace = copy_old_workspace(tmp_path.resolve() / "ws")
    run = RunDir(workspace / "runs" / RUN_NAME)
    raw = yaml.safe_load(run.config.read_text(encoding="utf-8"))
    run.config.write_text(yaml.safe_dump({"schema_version": 99, **raw}, sort_keys=False), encoding="utf-8")
    scheduler = Scheduler(workspace)
    try:
        [info] = RunManager(scheduler).list()
    finally:
        scheduler.shutdown()
    assert info.damaged and info.error == f"config.yaml cannot be read: it {NEWER}"
    result = launch("export", str(run.path), "--out", str(tmp_path / "merged"))
    assert result.returncode != 0 and f"{run.config} {NEWER}" in result.stderr, result.stderr
    assert not (tmp_path / "merged").exists()
