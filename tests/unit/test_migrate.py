"""Schema versions of config.yaml and status.json (engine.config_migrate): the steps, the stamps the writers put,
the readers that go through them, and the one sentence a newer release's file gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine import config_migrate as migrate
from engine.config import ConfigError, ExportConfig, load_config, parse_config
from engine.config_best import BestOptions
from engine.config_distributed import DistributedOptions
from engine.config_stage import StageOptions
from engine.jobs.rundir import ExportDir, RunDir, read_json
from tests.old_workspace import RUN_NAME, copy_old_workspace

# devices and distributed came later too: written at their defaults (one process where torch sees fit)
DISTRIBUTED = DistributedOptions().model_dump(mode="json")
NEWER = "written by a newer PEFT Workbench"


@pytest.fixture
def old_run(tmp_path: Path) -> RunDir:
    return RunDir(copy_old_workspace(tmp_path / "ws") / "runs" / RUN_NAME)


@pytest.mark.parametrize("kind", [migrate.CONFIG, migrate.STATUS], ids=lambda kind: kind.file)
def test_every_older_version_has_a_step_to_the_next(kind: migrate.FileKind) -> None:
    """Bumping a version without adding its step fails here, not on a user's old run folder."""
    assert sorted(kind.steps) == list(range(1, kind.version))


@pytest.mark.parametrize("kind", [migrate.CONFIG, migrate.STATUS], ids=lambda kind: kind.file)
def test_version_1_is_todays_fields_and_the_stamp_is_taken_out(kind: migrate.FileKind) -> None:
    fields = {"state": "completed", "nested": {"a": 1}}
    assert kind.upgrade(fields) == fields  # no version key: written before versions were stamped
    assert kind.upgrade(kind.stamp(fields)) == fields
    assert list(kind.stamp(fields))[0] == kind.key and kind.stamp(fields)[kind.key] == kind.version == 2


def test_steps_run_in_order_from_the_files_version() -> None:
    """The shape of the next rename: version 3 renames train.lr; a version-1 file goes through both steps."""
    def rename_lr(fields: dict) -> dict:
        train = dict(fields.get("train", {}))
        if "lr" in train:
            train["learning_rate"] = train.pop("lr")
        return {**fields, "train": train}

    kind = migrate.FileKind("config.yaml", "schema_version", 3, {1: lambda fields: fields, 2: rename_lr})
    assert kind.upgrade({"train": {"lr": 0.1}}) == {"train": {"learning_rate": 0.1}}
    assert kind.upgrade({"schema_version": 2, "train": {"lr": 0.1}}) == {"train": {"learning_rate": 0.1}}
    assert kind.upgrade({"schema_version": 3, "train": {"lr": 0.1}}) == {"train": {"lr": 0.1}}  # already today's


@pytest.mark.parametrize("version, words", [(99, NEWER), (3, NEWER), ("two", "no schema version"),
                                            (0, "no schema version"), (True, "no schema version")])
def test_a_version_this_code_cannot_read_is_one_sentence(version: object, words: str) -> None:
    with pytest.raises(migrate.SchemaError) as error:
        migrate.migrate_config({"schema_version": version, "output_dir": "x"})
    sentence = error.value.sentence("runs/a/config.yaml")
    assert sentence.startswith("runs/a/config.yaml ") and words in sentence and "\n" not in sentence
    if words == NEWER:
        assert sentence.endswith("update PEFT Workbench to open it.") and f"schema_version {version}" in sentence


def test_a_fresh_config_round_trips_with_its_version(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('[{"instruction": "a", "output": "b"}]', encoding="utf-8")
    config = parse_config({"model": {"name_or_path": "org/m"}, "data": {"path": "data.json"}, "output_dir": "run"},
                          base_dir=tmp_path)
    text = config.to_yaml()
    assert text.startswith("schema_version: 2\n")
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path) == config
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config.write_text(text, encoding="utf-8")
    assert run.read_config() == config


def test_an_export_config_round_trips_with_its_version(tmp_path: Path) -> None:
    job = ExportDir(tmp_path / "exports" / "e")
    job.path.mkdir(parents=True)
    config = ExportConfig(run_dir=str(tmp_path / "run"), dtype="float32")
    job.config.write_text(config.to_yaml(), encoding="utf-8")
    assert yaml.safe_load(job.config.read_text(encoding="utf-8"))["schema_version"] == 2
    assert job.read_config() == config


def test_the_old_runs_config_migrates_to_todays(old_run: RunDir) -> None:
    raw = yaml.safe_load(old_run.config.read_text(encoding="utf-8"))
    assert "schema_version" not in raw  # what makes it old
    config = old_run.read_config()
    assert load_config(old_run.config) == config
    assert (config.method.name, config.method.r, config.train.eval_steps) == ("lora", 4, 3)
    assert config.output_dir == str(old_run.path) and Path(config.model.name_or_path).is_dir()
    # the step changed no key; train.stage and its options, report_to, kernels, the kept checkpoint's metric and
    # patience and model.adapter came later and are written at their defaults (sft; a TensorBoard log; kernels auto;
    # eval_loss; no starting run)
    added = {name: field.default for name, field in StageOptions.model_fields.items()} | {
        "report_to": ["tensorboard"], "kernels": "auto"}
    added |= {name: field.default for name, field in BestOptions.model_fields.items()}
    assert yaml.safe_load(config.to_yaml()) == {"schema_version": 2, **raw, "train": {**raw["train"], **added},
                                                "model": {**raw["model"], "adapter": None}, **DISTRIBUTED}


def test_status_is_stamped_by_its_writer_and_the_old_one_reads(old_run: RunDir) -> None:
    assert "schema" not in read_json(old_run.status)
    assert old_run.read_status()["state"] == "completed"
    old_run.write_status("queued", pid=None)
    assert read_json(old_run.status) == {"schema": 2, "state": "queued", "pid": None}
    assert old_run.read_status() == {"state": "queued", "pid": None}


def test_a_newer_releases_files_say_so_instead_of_crashing(old_run: RunDir) -> None:
    raw = yaml.safe_load(old_run.config.read_text(encoding="utf-8"))
    old_run.config.write_text(yaml.safe_dump({"schema_version": 99, **raw}), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(old_run.config)
    assert error.value.issues == ["the file was written by a newer PEFT Workbench (schema_version 99; this one "
                                  "reads up to 2): update PEFT Workbench to open it."]
    with pytest.raises(ValueError, match=f"^{old_run.config} was {NEWER} .*: update PEFT Workbench to open it.$"):
        old_run.read_config()
    old_run.status.write_text('{"schema": 99, "state": "completed"}', encoding="utf-8")
    status = old_run.read_status()
    assert status["damaged"] and status["state"] == "failed"
    assert status["error"].startswith(f"status.json was {NEWER} (schema 99;")
