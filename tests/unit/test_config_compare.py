"""The comparison's config (engine/config_compare.py), its plan (engine/compare/plan.py) and its table read from run
folders (engine/compare/table.py): in process, files only, no training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.compare.plan import DONE, RESUME, START, plan, prepare
from engine.compare.table import COLUMNS, CompareDir, build_table, csv_text, markdown, write_table
from engine.config import METHOD_NAMES, ConfigError
from engine.config_compare import DEFAULT_METHODS, PRESETS, CompareConfig, parse_compare_config, run_config
from engine.jobs.rundir import write_json_atomic


def raw(tmp_path: Path, **over) -> dict:
    data = tmp_path / "rows.json"
    data.write_text(json.dumps([{"instruction": "q", "output": "a"}] * 4), encoding="utf-8")
    return {"model": {"name_or_path": "some/model"}, "data": {"path": str(data), "val_size": 0.25},
            "train": {"max_steps": 5}, "output_dir": str(tmp_path / "compares" / "c"), **over}


def test_the_default_methods_and_every_preset_make_valid_runs(tmp_path: Path):
    config = parse_compare_config(raw(tmp_path))
    assert config.methods == list(DEFAULT_METHODS) and len(DEFAULT_METHODS) == 8
    for method in METHOD_NAMES:
        run = run_config(config, method, tmp_path / method)
        assert run.method.name == method and run.train.learning_rate == PRESETS[method]["learning_rate"]
        assert run.train.max_steps == 5 and run.data.val_size == 0.25  # the one budget, the same held-out rows
        for key, value in PRESETS[method].items():
            if key != "learning_rate":
                assert getattr(run.method, key) == value
    assert run_config(config, "qlora", tmp_path).method.effective_bits == 4
    assert run_config(config, "prompt", tmp_path).method.prompt_tuning_init == "text"


def test_a_preset_is_edited_over_the_built_in_one(tmp_path: Path):
    config = parse_compare_config(raw(tmp_path, presets={"lora": {"learning_rate": 1e-3, "r": 4}}))
    run = run_config(config, "lora", tmp_path)
    assert (run.train.learning_rate, run.method.r, run.method.lora_alpha) == (1e-3, 4, 32)


@pytest.mark.parametrize(("over", "words"), [
    ({"methods": ["lora", "lorax"]}, "'lorax', which is no method"),
    ({"methods": ["lora", "lora"]}, "lists a method twice"),
    ({"presets": {"prompt": {"r": 4}}}, "presets.prompt sets r, which prompt does not read"),
    ({"presets": {"lora": {"r": 0}}}, "lora: 'method.r' is 0"),
    ({"data": {"path": "x.json"}}, "data.val_size is 0"),
    ({"colour": 1}, "Unknown key 'colour'"),
    ({"train": {"max_steps": 2, "stage": "dpo"}}, "train.stage is dpo, whose held-out rows are pairs, but a "
                                                   "comparison evaluates"),
])
def test_a_config_that_cannot_compare_is_refused_with_a_sentence(tmp_path: Path, over: dict, words: str):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(".", r"\.")):
        parse_compare_config(raw(tmp_path, **over))


METRICS = {"lora": {"trainable_params": 100, "trainable_percent": 1.0, "weights_size_mb": 0.5,
                    "peak_memory_mb": 300.0, "tokens_per_s": 50.0, "wall_s": 9.0, "final_loss": 2.0,
                    "eval_loss": 2.5, "eval_perplexity": 12.18, "train_loss": 3.0},
           "prompt": {"trainable_params": 10, "trainable_percent": 0.1, "weights_size_mb": 0.01,
                      "peak_memory_mb": 310.0, "tokens_per_s": 80.0, "wall_s": 5.0, "final_loss": 2.2,
                      "eval_loss": 2.4, "eval_perplexity": 11.02, "train_loss": 3.1}}


def finished_run(compare: CompareDir, config: CompareConfig, method: str) -> None:
    """A run folder as training leaves it: config.yaml, status, events with a loss curve, metrics.json."""
    step = plan(compare, config)[config.methods.index(method)]
    prepare(step)
    step.run.write_status("completed", pid=None)
    step.run.events.write_text("".join(json.dumps({"kind": "metrics", "v": 2, "step": s, "values": {"loss": 4.0 - s},
                                                   "t": 1.0}) + "\n" for s in (1, 2)), encoding="utf-8")
    write_json_atomic(step.run.metrics, METRICS[method])


def test_the_table_reads_each_runs_outputs_and_marks_the_best(tmp_path: Path):
    config = parse_compare_config(raw(tmp_path, methods=["lora", "prompt", "full"]))
    compare = CompareDir(Path(config.output_dir))
    for method in ("lora", "prompt"):
        finished_run(compare, config, method)
    table = write_table(compare, config)
    rows = {row["method"]: row for row in table["rows"]}
    for method in ("lora", "prompt"):
        for column in COLUMNS:
            if column.metric:
                assert rows[method][column.key] == METRICS[method][column.metric]
    assert rows["full"]["state"] == "not started" and rows["full"]["final_loss"] is None
    assert (rows["lora"]["merges"], rows["prompt"]["merges"], rows["full"]["merges"]) == (True, False, False)
    assert table["best"]["eval_loss"] == ["prompt"] and table["best"]["final_loss"] == ["lora"]
    assert table["best"]["tokens_per_s"] == ["prompt"] and table["completed"] == 2
    assert table["curves"]["lora"] == [[1, 3.0], [2, 2.0]] or table["curves"]["lora"] == [(1, 3.0), (2, 2.0)]
    assert json.loads(compare.table_json.read_text())["rows"][0]["eval_loss"] == 2.5
    assert "| LoRA | completed | 100 | 1.0000 |" in markdown(table) and "2.4000 *" in compare.table_md.read_text()
    evaluation_cells = ",,,,"  # exact match, ROUGE-L, BLEU, general change: not evaluated yet
    assert csv_text(table).splitlines()[1].startswith(
        f"lora,completed,100,1.0,0.5,300.0,,,50.0,9.0,2.0,2.5,12.18{evaluation_cells},True")


def test_completed_methods_are_not_trained_again_and_stopped_ones_resume(tmp_path: Path):
    config = parse_compare_config(raw(tmp_path, methods=["lora", "prompt", "ia3"]))
    compare = CompareDir(Path(config.output_dir))
    finished_run(compare, config, "lora")
    stopped = plan(compare, config)[1]
    prepare(stopped)
    stopped.run.write_status("stopped", pid=None)
    checkpoint = stopped.run.checkpoints / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 3}), encoding="utf-8")
    steps = plan(compare, config)
    assert [step.action for step in steps] == [DONE, RESUME, START]
    assert steps[1].config.train.resume is True
    edited = config.model_copy(update={"presets": {"lora": {"learning_rate": 1e-3}}})
    assert plan(compare, edited)[0].action == START  # other settings: trained again, afresh
    assert build_table(compare, config)["rows"][1]["state"] == "stopped"


def test_the_pages_presets_table_round_trips_and_makes_the_comparison(tmp_path: Path):
    from webui.forms.compare_table import CompareFormError, compare_config, curves_frame, preset_rows, table_html

    rows = preset_rows()
    assert [row[0] for row in rows] == list(METHOD_NAMES)
    rows[0] = ["lora", "0.001", '{"r": 4, "lora_alpha": 8}']  # edited on the page: text in the cells
    data = raw(tmp_path)["data"]["path"]
    config = compare_config("some/model", data, ["prompt", "lora"], rows, 3, 2, 64, 0.25)
    assert config.methods == ["lora", "prompt"] and config.train.max_steps == 3 and config.data.val_size == 0.25
    assert run_config(config, "lora", tmp_path).method.r == 4 and config.preset("lora")["learning_rate"] == 1e-3
    assert config.preset("prompt") == PRESETS["prompt"]
    rows[0] = ["lora", "fast", "{}"]
    with pytest.raises(CompareFormError, match="cannot be read: give a number"):
        compare_config("some/model", data, ["lora"], rows, 3, 2, 64, 0.25)
    with pytest.raises(CompareFormError, match="data.val_size is 0"):
        compare_config("some/model", data, ["prompt"], preset_rows(), 3, 2, 64, 0)
    config = parse_compare_config(raw(tmp_path, methods=["lora", "prompt", "full"]))
    compare = CompareDir(Path(config.output_dir))
    for method in ("lora", "prompt"):
        finished_run(compare, config, method)
    table = build_table(compare, config)
    page = table_html(table)
    assert page.count("<tr data-method=") == 3 and "<strong class='wb-best'>2.4000 ★</strong>" in page
    assert list(curves_frame(table)["series"].unique()) == ["lora", "prompt"]

