"""Start refuses a dataset whose shape the run's stage does not read (webui.forms.prestart with
engine.config_stage.shape_problem): a pairs or KTO file under sft or pretrain, SFT rows under a preference stage,
KTO rows under dpo; with the very sentence the engine raises when it reads that file, so the page says at Start
what the run would have failed with. The inspection runs in-process here (engine.cli.inspect_data's own
function, not its process); a fitting file passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.config import DataConfig, RunConfig
from engine.config_stage import SFT_SHAPES
from engine.jobs.failures import DataError
from webui.forms import prestart
from webui.forms.prestart import StartRefusedError, check_start
from webui.jobs.commands import EngineCache, EngineJob

PAIRS = [{"prompt": "Hi", "chosen": "Hello, how can I help?", "rejected": "What."}] * 2
KTO = [{"prompt": "Hi", "completion": "Hello.", "label": True}, {"prompt": "Hi", "completion": "What.", "label": False}]
SFT = [{"instruction": "Hi", "output": "Hello."}] * 2


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EngineCache:
    """The page's cache, its inspect-data job answered in-process (what the engine process prints)."""
    from engine.cli import inspect_data

    made = prestart.inspect_job

    def in_process(path: Path, **options: Any) -> EngineJob:
        job = made(path, **options)

        def run(_scratch: Path) -> dict[str, Any]:
            args = inspect_data._parser().parse_args(["--data", str(path), "--format", options["data_format"]])
            report = inspect_data._inspect(DataConfig(path=str(path), format=options["data_format"]), args)
            assert not isinstance(report, str), report
            return report

        return EngineJob(job.command, job.depends_on, run)

    monkeypatch.setattr(prestart, "inspect_job", in_process)
    return EngineCache(tmp_path / "cache")


def run_config(tmp_path: Path, rows: list[dict], stage: str) -> RunConfig:
    data = tmp_path / f"{stage}.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")  # a local model folder, as the page checked it
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")  # with its tokenizer files (else refused first)
    return RunConfig.model_validate({"model": {"name_or_path": str(tmp_path)}, "method": {"name": "lora"},
                                     "data": {"path": str(data)}, "train": {"stage": stage},
                                     "output_dir": str(tmp_path / "run")})


def engine_sentence(config: RunConfig) -> str:
    """What the run itself says as it reads the file (the stage's loader, before any model loads)."""
    from engine.train.objectives import objective

    with pytest.raises(DataError) as said:
        objective(config.train.stage).load(config.data, 0)
    return str(said.value)


@pytest.mark.parametrize(("rows", "stage", "words"), [
    (PAIRS, "sft", "holds preference pairs (prompt, chosen, rejected), which supervised fine-tuning and "
                   "pretraining do not read: set train.stage to dpo, orpo, simpo or kto"),
    (KTO, "pretrain", "holds replies marked good or bad (prompt, completion, label), which supervised "
                      "fine-tuning and pretraining do not read: set train.stage to kto"),
    (SFT, "dpo", "holds alpaca rows (SFT's), not preference pairs"),
    (SFT, "kto", "holds alpaca rows (SFT's), not preference pairs"),
    (KTO, "orpo", "holds rows of prompt, completion and label (KTO's unpaired replies): set train.stage to kto"),
])  # fmt: skip
def test_start_refuses_a_file_the_stage_cannot_read_with_the_engines_sentence(
        rows: list[dict], stage: str, words: str, cache: EngineCache, tmp_path: Path) -> None:
    config = run_config(tmp_path, rows, stage)
    with pytest.raises(StartRefusedError) as refused:
        check_start(config, cache, tmp_path)
    name = Path(config.data.path).name
    assert refused.value.key == "msg.start_data_refused" and refused.value.values["name"] == name
    assert refused.value.values["reason"] == engine_sentence(config)
    assert f"{name} {words}" in refused.value.values["reason"]


@pytest.mark.parametrize(("rows", "stage"), [(PAIRS, "dpo"), (PAIRS, "kto"), (KTO, "kto"), (SFT, "sft")])
def test_start_passes_a_file_the_stage_reads(rows: list[dict], stage: str, cache: EngineCache,
                                             tmp_path: Path) -> None:
    check_start(run_config(tmp_path, rows, stage), cache, tmp_path)


def test_the_sft_shapes_are_the_engines_formats() -> None:
    from engine.data.formats import FORMATS

    assert set(SFT_SHAPES) == set(FORMATS)


@pytest.mark.parametrize("rows", [PAIRS, KTO])
def test_the_evaluate_tab_refuses_a_pairs_file_with_the_evaluations_own_sentence(
        rows: list[dict], cache: EngineCache, tmp_path: Path) -> None:
    """Run evaluation on a file of pairs (or KTO rows) is refused at once, with the sentence the evaluation itself
    would fail with (it reads SFT rows, and how to give it some), not queued to fail; SFT rows pass."""
    from engine.config_eval import EvalConfig
    from engine.eval.testset import EvalSetError, load_test_rows
    from webui.forms.prestart import check_test_set

    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = EvalConfig(models=["base"], base="m", data=DataConfig(path=str(data)))
    with pytest.raises(StartRefusedError) as refused:
        check_test_set(config, cache)
    with pytest.raises(EvalSetError) as engine_said:
        load_test_rows(config)
    assert refused.value.key == "msg.eval_data_refused" and refused.value.values["name"] == "test.jsonl"
    assert refused.value.values["reason"] == str(engine_said.value)
    assert "an evaluation reads SFT rows" in str(engine_said.value)
    data.write_text("".join(json.dumps(row) + "\n" for row in SFT), encoding="utf-8")
    check_test_set(config, cache)


@pytest.mark.parametrize("rows", [PAIRS, KTO])
def test_the_compare_tab_refuses_a_pairs_file_before_any_method_is_queued(
        rows: list[dict], cache: EngineCache, tmp_path: Path) -> None:
    """Start comparison on a file of pairs (or KTO rows) is refused with one sentence saying what a comparison
    trains on (it queued every method, each failing with training's train.stage advice); SFT rows pass."""
    from engine.config import ModelConfig
    from engine.config_compare import CompareConfig
    from webui.forms.prestart import check_compare_data

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = CompareConfig(model=ModelConfig(name_or_path="m"), data=DataConfig(path=str(data), val_size=0.5))
    with pytest.raises(StartRefusedError) as refused:
        check_compare_data(config, cache)
    assert refused.value.key == "msg.compare_data_refused"
    assert refused.value.values["reason"].startswith("rows.jsonl holds ") and "but a comparison trains every " \
        "method with supervised fine-tuning" in refused.value.values["reason"]
    data.write_text("".join(json.dumps(row) + "\n" for row in SFT), encoding="utf-8")
    check_compare_data(config, cache)


def test_evaluate_and_compare_keep_the_engines_reason_for_a_file_of_unknown_columns(tmp_path: Path) -> None:
    """newuser5: a question/answer CSV on the Evaluate tab was refused with "map them with data.columns", which
    that tab (and Compare) could not do. Both have a Columns group now: the check keeps the engine's reason, which
    their tabs word as the Train tab does (pick the columns under Columns: tests/webui/test_webui_file_columns.py)."""
    from engine.config import ModelConfig
    from engine.config_compare import CompareConfig
    from engine.config_eval import EvalConfig
    from engine.sentences import said
    from webui.forms.prestart import check_compare_data, check_test_set
    from webui.jobs.commands import EngineCommandError

    data = tmp_path / "qa.csv"
    data.write_text("question,answer\nHi,Hello.\nBye,Goodbye.\n", encoding="utf-8")
    values = {"name": "qa.csv", "columns": "question, answer", "expected": "alpaca (instruction, output)"}

    class Refusing:  # the page's cache, answering as the inspection's engine process does for this file
        def answer(self, _job, **_options):
            raise EngineCommandError(said("engine.data.no_format", **values))

    checks = [(check_test_set, EvalConfig(models=["base"], base="m", data=DataConfig(path=str(data)))),
              (check_compare_data, CompareConfig(model=ModelConfig(name_or_path="m"),
                                                 data=DataConfig(path=str(data), val_size=0.5)))]
    for check, config in checks:
        with pytest.raises(StartRefusedError) as refused:
            check(config, Refusing())
        assert refused.value.values["reason"].key == "engine.data.no_format"
        assert refused.value.values["reason"].values == values
