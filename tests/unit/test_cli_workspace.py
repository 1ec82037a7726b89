"""The command line as a new user meets it (newuser CLI issue): `train`, `chat` and `export` take `--workspace DIR`
and find a run by its name there; `export` without `--out` writes where the page's Export tab does, in the dtype the
page preselects (one rule, engine.jobs.exports); a config whose output_dir holds a run names that folder without
`..` and offers --resume only where something is left to train; and a resumed run's config.yaml stays a template
that another run may copy. Nothing here trains or exports: the job is replaced where it would start."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from engine.chat import cli as chat_cli
from engine.config import ConfigError, load_config
from engine.export import cli as export_cli
from engine.jobs import workspace
from engine.jobs.exports import default_export_dtype, export_name
from engine.jobs.rundir import RunDir
from engine.train import recipe
from engine.train.output_dir import check_output_dir
from tests.cli import train_in_process
from tests.run_folders import write_run
from webui.context import AppContext
from webui.jobs import devices

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "assets/models/workbench-demo-5m"
DEMO_DATA = ROOT / "assets/datasets/identity_alpaca.json"


def write_yaml(path: Path, **top: object) -> Path:
    raw = {"model": {"name_or_path": str(DEMO_MODEL)}, "data": {"path": str(DEMO_DATA)},
           "train": {"max_steps": 2}, **top}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def finished_run(folder: Path, state: str = "completed", checkpoint: bool = True) -> RunDir:
    """A run folder as the engine leaves it after `state` (events, status, a complete checkpoint), no weights."""
    run = RunDir(folder)
    config = load_config(write_yaml(folder.parent / f"{folder.name}.yaml", output_dir=str(folder)))
    folder.mkdir(parents=True)
    run.config.write_text(config.to_yaml(), encoding="utf-8")
    run.status.write_text(json.dumps({"state": state, "pid": None}), encoding="utf-8")
    run.events.write_text(json.dumps({"kind": "status", "t": 1, "state": state}) + "\n", encoding="utf-8")
    if checkpoint:
        (run.checkpoints / "checkpoint-2").mkdir(parents=True)
        (run.checkpoints / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2, "max_steps": 2}')
    return run


# ---------------------------------------------------------------------------------------------- 1, 2: --workspace


def test_train_takes_workspace_and_a_config_without_output_dir_trains_into_its_runs(tmp_path):
    config = write_yaml(tmp_path / "configs" / "pirate.yaml")
    ws = tmp_path / "ws"
    printed = train_in_process(str(config), "--workspace", str(ws), "--print-command")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.split()[-2:] == ["--workspace", str(ws)]  # a rank is told the same workspace
    args = recipe.parse_args([str(config), "--workspace", str(ws)])
    assert Path(recipe.read_config(args).output_dir) == ws / "runs" / "pirate"


def test_train_without_workspace_keeps_a_configs_own_output_dir(tmp_path):
    config = write_yaml(tmp_path / "configs" / "pirate.yaml", output_dir="../runs/cli-pirate")
    for flags in ([], ["--workspace", str(tmp_path / "ws")]):  # output_dir is the config's, relative to its folder
        args = recipe.parse_args([str(config), *flags])
        assert Path(recipe.read_config(args).output_dir).resolve() == tmp_path / "runs" / "cli-pirate"


def test_train_resume_finds_a_run_by_its_name_or_names_both_places(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    finished_run(ws / "runs" / "pirate-lora", state="stopped")
    started = []
    monkeypatch.setattr(recipe, "run_train", lambda config, **_: started.append(config) or 0)
    assert train_in_process("--resume", "pirate-lora", "--workspace", str(ws)).returncode == 0
    assert started[0].output_dir == str(ws / "runs" / "pirate-lora") and started[0].train.resume
    missing = train_in_process("--resume", "nosuch", "--workspace", str(ws))
    assert missing.returncode == 2
    assert str(Path("nosuch").absolute()) in missing.stderr and str(ws / "runs" / "nosuch") in missing.stderr


def test_chat_adapter_by_run_name(tmp_path, capsys):
    ws = tmp_path / "ws"
    run = finished_run(ws / "runs" / "pirate-lora")
    assert chat_cli.parse_adapter_args(["pirate-lora"], str(ws)) == {"pirate-lora": str(run.path)}
    assert chat_cli.parse_adapter_args(["mine=pirate-lora"], str(ws)) == {"mine": str(run.path)}
    assert chat_cli.parse_adapter_args([str(run.path)], str(ws)) == {"pirate-lora": str(run.path)}
    assert chat_cli.main(["--adapter", "nosuch", "--workspace", str(ws)]) == 2
    error = capsys.readouterr().err
    assert str(Path("nosuch").absolute()) in error and str(ws / "runs" / "nosuch") in error


def test_a_run_name_outside_a_workspace_says_where_it_looked(tmp_path):
    with pytest.raises(workspace.RunNotFoundError, match="neither a folder"):
        workspace.find_run("pirate-lora", tmp_path / "ws")
    with pytest.raises(workspace.RunNotFoundError, match="does not exist"):
        workspace.find_run(tmp_path / "gone", tmp_path / "ws")


# ---------------------------------------------------------------------------------------------- 3, 6: export


def test_export_without_out_writes_where_the_page_does_and_says_where(tmp_path, monkeypatch, capsys):
    ctx = AppContext.create(tmp_path / "ws")
    write_run(ctx, "pirate-lora")
    ran = []

    def job(folder: Path) -> int:  # the export job as the page runs it, replaced: it completes at once
        ran.append(folder)
        (folder / "status.json").write_text(json.dumps({"state": "completed", "result": {"merged": True}}))
        return 0

    monkeypatch.setattr(export_cli, "run_export_job", job)
    assert export_cli.main(["pirate-lora", "--workspace", str(ctx.workspace)]) == 0
    dtype = default_export_dtype(None)  # this machine has no GPU (tests/unit/conftest.py)
    page = ctx.exports.job(export_name("pirate-lora", "lora", dtype))
    assert ran == [page.path] and f"done: {page.out}" in capsys.readouterr().err
    written = page.read_config()
    assert written.dtype == dtype and Path(written.run_dir) == ctx.runs.run_dir("pirate-lora").path
    assert ctx.exports.latest("pirate-lora") == page  # the Export tab shows it
    assert export_cli.main(["pirate-lora", "--workspace", str(ctx.workspace)]) == 2  # completed: --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert export_cli.main(["pirate-lora", "--workspace", str(ctx.workspace), "--overwrite"]) == 0


def test_the_page_and_the_command_line_preselect_one_export_dtype():
    from engine.export.merge import default_dtype
    from webui.tabs import export as export_tab

    assert [default_export_dtype(gpu) for gpu in (None, True, False)] == ["float32", "bfloat16", "float16"]
    assert default_dtype() == "float32"  # the engine on this CPU-only machine
    assert export_tab.default_export_dtype is default_export_dtype and export_tab.gpu_bf16 is devices.gpu_bf16
    assert devices.gpu_bf16() is None  # no GPU listed: the page preselects what the CLI writes


@pytest.mark.parametrize(("answer", "bf16"), [("8.0\n", True), ("7.5\n", False), ("[N/A]\n", False)])
def test_the_page_reads_bf16_from_the_gpus_compute_capability(monkeypatch, answer, bf16):
    monkeypatch.setattr(devices, "list_gpus", lambda *_: devices.GpuList((devices.Gpu(0, "GPU", 1, 0),)))
    done = SimpleNamespace(returncode=0, stdout=answer, stderr="")
    assert devices.gpu_bf16(lambda *_args, **_kwargs: done) is bf16


# ---------------------------------------------------------------------------------------------- 4: output_dir


def test_a_completed_run_is_named_without_dots_and_not_offered_resume(tmp_path):
    finished_run(tmp_path / "runs" / "cli-pirate")
    config = load_config(write_yaml(tmp_path / "configs" / "pirate.yaml", output_dir="../runs/cli-pirate"))
    with pytest.raises(ConfigError) as refused:
        check_output_dir(config)
    said = str(refused.value)
    assert f"output_dir {tmp_path / 'runs' / 'cli-pirate'} already holds a run (completed)" in said
    assert ".." not in said and "--resume" not in said and "--overwrite" in said


@pytest.mark.parametrize("state", ["stopped", "failed"])
def test_a_stopped_or_failed_run_with_a_checkpoint_is_offered_resume(tmp_path, state):
    run = finished_run(tmp_path / "runs" / "cli-pirate", state=state)
    config = load_config(write_yaml(tmp_path / "configs" / "pirate.yaml", output_dir="../runs/cli-pirate"))
    with pytest.raises(ConfigError, match=f"--resume {run.path}"):
        check_output_dir(config)


# ---------------------------------------------------------------------------------------------- 5: resume


def test_a_resumed_runs_config_yaml_copied_with_another_output_dir_trains(tmp_path, monkeypatch):
    run = finished_run(tmp_path / "runs" / "cli-pirate", state="stopped")
    jobs = []
    monkeypatch.setattr(recipe, "run_job", lambda _kind, _folder, **kw: jobs.append(kw["config"]) or 0)
    assert train_in_process("--resume", str(run.path)).returncode == 0
    assert jobs[0].train.resume  # the job resumes ...
    saved = yaml.safe_load(run.config.read_text(encoding="utf-8"))
    assert saved["train"]["resume"] is False  # ... and its config.yaml stays a template
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump({**saved, "output_dir": str(tmp_path / "runs" / "another")}), encoding="utf-8")
    assert train_in_process(str(copy)).returncode == 0 and not jobs[1].train.resume


def test_the_pages_resume_is_answered_and_cleared_from_config_yaml(tmp_path, monkeypatch):
    run = finished_run(tmp_path / "runs" / "cli-pirate", state="stopped")
    config = run.read_config()
    config.train.resume = True  # the page's Resume writes it (webui.jobs.runs), the engine reads it from there
    run.config.write_text(config.to_yaml(), encoding="utf-8")

    class Started(Exception):
        pass

    def started(seen):
        raise Started(seen.train.resume)

    monkeypatch.setattr(recipe.launch, "check_world", started)
    context = SimpleNamespace(config=config, job=run, reporter=SimpleNamespace(rank=0))
    with pytest.raises(Started, match="True"):
        recipe.train_body(context)
    assert load_config(run.config).train.resume is False


def test_train_args_name_the_workspace_only_where_given(tmp_path):
    config = write_yaml(tmp_path / "pirate.yaml")
    plain = argparse.Namespace(resume=None, config=str(config), overwrite=False, workspace=workspace.DEFAULT)
    assert recipe.train_args(plain) == [str(config)]
