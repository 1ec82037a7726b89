"""The Evaluate tab without a page: the metrics table built from a metrics.json written by hand (the best per
column marked, the CSV), the row view of a hand-written predictions.jsonl and its filter, and the evaluation job the
form's choices queue (its config, its test set, its refusals, the path boundary the scheduler admits it by)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from engine.jobs.rundir import EvalDir
from tests import run_folders
from webui.context import AppContext
from webui.forms import eval_table
from webui.jobs.evals import EvalChoiceError, validation_choice
from webui.jobs.paths import PathError

METRICS = {
    "test_set": "identity.json", "rows": 3,
    "models": {
        "base": {"loss": 3.5, "perplexity": 33.1, "exact_match": 0.0, "rouge_l": 0.12, "bleu": 1.5,
                 "mean_new_tokens": 40.0, "stopped_share": 0.5,
                 "tool_calls": {"valid_json": 0.5, "invalid_json": 2, "name_accuracy": 0.0, "per_tool": {}}},
        "tuned": {"loss": 0.4, "perplexity": 1.49, "exact_match": 0.9, "rouge_l": 0.95, "bleu": 88.0,
                  "mean_new_tokens": 12.0, "stopped_share": 1.0,
                  "tool_calls": {"valid_json": 1.0, "invalid_json": 0, "name_accuracy": 1.0, "per_tool": {}}},
        "other": {"loss": 0.4, "perplexity": 1.49, "exact_match": 0.3, "rouge_l": 0.5, "bleu": 20.0,
                  "mean_new_tokens": 20.0, "stopped_share": 1.0},
    },
    "best": {"loss": "tuned"},
    "general": {"prompts": 2, "models": {"base": {"mean_new_tokens": 30.0, "stopped_share": 1.0},
                                         "tuned": {"mean_new_tokens": 20.0, "stopped_share": 1.0,
                                                   "changed_share": 0.5, "length_change": -10.0},
                                         "other": {"mean_new_tokens": 30.0, "stopped_share": 1.0,
                                                   "changed_share": 0.0, "length_change": 0.0}}},
}


def cells(html: str, model: str) -> list[str]:
    """The cells of a model's row in the table's HTML."""
    row = html.split(f"<tr><td>{model}</td>", 1)[1].split("</tr>", 1)[0]
    return [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]


def write_run(ctx: AppContext, name: str, val_size: float = 0.0) -> Path:
    return run_folders.write_run(ctx, name, model="org/tiny", val_size=val_size)


def test_the_table_has_a_column_per_figure_and_marks_the_best_of_each():
    titles = [column.title for column in eval_table.columns(METRICS)]
    assert titles[:7] == ["loss", "ppl", "exact match", "ROUGE-L", "BLEU", "mean tokens", "stopped"]
    assert {"valid JSON", "invalid JSON", "tool name", "general changed"} <= set(titles)
    assert "arguments" not in titles  # a figure no model has is no column
    html = eval_table.table_html(METRICS)
    base, tuned, other = cells(html, "base"), cells(html, "tuned"), cells(html, "other")
    column = {title: index for index, title in enumerate(titles)}
    mark = eval_table.BEST_MARK
    assert tuned[column["exact match"]] == f"<strong class='wb-best'>0.900 {mark}</strong>"
    assert base[column["exact match"]] == "0.000"
    assert mark in tuned[column["loss"]] and mark in other[column["loss"]]  # a tie marks both
    assert mark not in base[column["loss"]]
    assert not any(mark in row[column["mean tokens"]] for row in (base, tuned, other))  # no direction: no mark
    assert tuned[column["invalid JSON"]] == f"<strong class='wb-best'>0 {mark}</strong>"  # fewer is better
    assert base[column["invalid JSON"]] == "2"
    assert other[column["tool name"]] == "–"  # other had no tool-call figures
    assert mark in other[column["general changed"]] and base[column["general changed"]] == "–"


def test_a_column_where_every_model_has_the_same_value_marks_none():
    metrics = {"models": {"base": {"exact_match": 0.0, "rouge_l": 0.2}, "tuned": {"exact_match": 0.0, "rouge_l": 0.1}}}
    html = eval_table.table_html(metrics)
    assert cells(html, "base") == ["0.000", f"<strong class='wb-best'>0.200 {eval_table.BEST_MARK}</strong>"]
    assert cells(html, "tuned") == ["0.000", "0.100"]
    assert eval_table.best({"models": {"base": {"loss": 1.0}}}, eval_table.COLUMNS[0]) == set()  # one model alone


def test_the_table_escapes_model_names():
    metrics = {"models": {"<b>x</b>": {"loss": 1.0}}}
    assert "<b>x</b>" not in eval_table.table_html(metrics)


def test_the_csv_holds_the_unrounded_figures_and_where_each_model_is_best():
    rows = list(csv.reader(io.StringIO(eval_table.table_csv(METRICS))))
    header = rows[0]
    assert header[0] == "model" and header[-1] == "best_in"
    assert header[1:4] == ["loss", "perplexity", "exact_match"]
    by_model = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert list(by_model) == ["base", "tuned", "other"]
    assert float(by_model["tuned"]["perplexity"]) == 1.49 and float(by_model["base"]["bleu"]) == 1.5
    assert by_model["other"]["tool_calls.name_accuracy"] == ""
    assert "exact_match" in by_model["tuned"]["best_in"].split() and "loss" in by_model["other"]["best_in"].split()
    assert by_model["base"]["best_in"] == ""


PREDICTIONS = [
    {"row": 0, "prompt": [{"role": "user", "content": "Who are you?"}], "reference": "I am Aria.",
     "answers": {"base": "I am a model.", "tuned": "I am Aria."},
     "scores": {"base": {"rouge_l": 0.5}, "tuned": {"rouge_l": 1.0}}},
    {"row": 1, "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
     "reference": "Hello.", "answers": {"base": "Hello.", "tuned": " Hello. "},
     "scores": {"base": {"rouge_l": 1.0}, "tuned": {"rouge_l": 1.0}}},
    {"row": 2, "prompt": [{"role": "user", "content": "Name?"}], "reference": "Aria",
     "answers": {"base": "x", "tuned": "Aria"}, "scores": {"base": {"rouge_l": 0.0}, "tuned": {"rouge_l": 1.0}}},
]


def test_the_row_view_shows_each_answer_and_the_filter_keeps_rows_that_differ_most_first(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in PREDICTIONS), encoding="utf-8")
    lines = eval_table.read_predictions(path)
    headers, rows = eval_table.row_view(lines, ["base", "tuned"])
    assert headers == ["row", "prompt", "reference", "base", "tuned"]
    assert rows[0] == [0, "Who are you?", "I am Aria.", "I am a model.", "I am Aria."]
    assert rows[1][1] == "system: Be brief.\nuser: Hi"
    _, differ = eval_table.row_view(lines, ["base", "tuned"], only_differ=True)
    assert [row[0] for row in differ] == [2, 0]  # row 1 differs only in spaces; row 2's gap (1.0) is the largest
    _, without_base = eval_table.row_view([{**line, "answers": {"tuned": "a"}} for line in lines], ["tuned"], True)
    assert without_base == []  # no base answer: nothing to differ from


def test_a_damaged_predictions_line_is_named(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"row": 0}\n[1]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        eval_table.read_predictions(path)


# ---------------------------------------------------------------------------------------------- the job


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    ctx = AppContext.create(tmp_path / "ws")
    monkeypatch.setattr(ctx.jobs, "tick", lambda: [])  # queued only: no engine process in tests/unit
    return ctx


def test_the_form_queues_an_eval_job_of_base_and_a_run_on_a_dataset(ctx: AppContext):
    run = write_run(ctx, "tuned")
    data = ctx.uploads / "test.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    config = ctx.evals.config(["base", "tuned"], str(data), ctx.runs.run_dir, 5, 16)
    assert config.models == ["base", str(run)] and config.data.path == str(data)
    assert (config.max_rows, config.sampling.max_new_tokens, config.base, config.general) == (5, 16, None, True)
    assert not ctx.evals.config(["tuned"], str(data), ctx.runs.run_dir, 5, 16, general=False).general
    assert ctx.evals.config(["tuned"], str(data), ctx.runs.run_dir, 0, 16).max_rows is None  # 0: every row
    job = ctx.evals.start(config)
    assert job.read_status()["state"] == "queued"
    written = job.read_config()
    assert written.models == config.models and written.output_dir == str(job.path)
    ctx.jobs.boundary.admit(job)  # every path inside: admitted
    assert ctx.evals.latest() == job
    assert ctx.evals.stop(job) and job.read_status()["state"] == "stopped"
    assert ctx.evals.start(config).name != job.name  # a second evaluation gets a name of its own


def test_the_validation_split_of_a_run_is_a_test_set_and_names_the_base(ctx: AppContext):
    held = write_run(ctx, "held", val_size=0.2)
    config = ctx.evals.config(["base"], validation_choice("held"), ctx.runs.run_dir, None, 8)
    assert (config.validation_of, config.data, config.base) == (str(held), None, "org/tiny")
    write_run(ctx, "all")
    with pytest.raises(EvalChoiceError, match="no rows out"):
        ctx.evals.config(["base", "all"], validation_choice("all"), ctx.runs.run_dir, None, 8)


def test_a_preference_runs_held_out_pairs_are_not_offered_as_a_test_set(ctx: AppContext):
    """A DPO run with a validation split holds out pairs, which the evaluation refuses: the tab does not list it
    (it listed it, and the evaluation then failed), and a typed choice of it is one sentence."""
    from engine.config import load_config
    from webui.tabs.evaluate import choices

    held = write_run(ctx, "held", val_size=0.2)
    dpo = write_run(ctx, "dpo", val_size=0.2)
    config = load_config(dpo / "config.yaml")
    (dpo / "config.yaml").write_text(config.model_copy(update={"train": config.train.model_copy(
        update={"stage": "dpo"})}).to_yaml(), encoding="utf-8")
    for name in ("held", "dpo"):
        (ctx.runs.runs_dir / name / "adapter").mkdir()
        (ctx.runs.runs_dir / name / "adapter" / "adapter_config.json").write_text("{}")
        (ctx.runs.runs_dir / name / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    sets = [value for _, value in choices(ctx)[1]["choices"]]
    assert validation_choice("held") in sets and validation_choice("dpo") not in sets, sets
    with pytest.raises(EvalChoiceError, match=r"^Run dpo trained on preference pairs \(dpo\), so its held-out rows"):
        ctx.evals.config(["base", "dpo"], validation_choice("dpo"), ctx.runs.run_dir, None, 8)
    assert ctx.evals.config(["base"], validation_choice("held"), ctx.runs.run_dir, None, 8).validation_of == str(held)


def test_choices_that_cannot_be_evaluated_are_refused_in_one_sentence(ctx: AppContext, tmp_path: Path):
    write_run(ctx, "tuned")
    data = ctx.uploads / "test.jsonl"
    data.write_text("{}\n")
    with pytest.raises(EvalChoiceError, match="at least one model"):
        ctx.evals.config([], str(data), ctx.runs.run_dir, None, 8)
    with pytest.raises(EvalChoiceError, match="test set"):
        ctx.evals.config(["base"], "", ctx.runs.run_dir, None, 8)
    with pytest.raises(EvalChoiceError, match="beside base"):
        ctx.evals.config(["base"], str(data), ctx.runs.run_dir, None, 8)
    with pytest.raises(EvalChoiceError, match="max_new_tokens"):
        ctx.evals.config(["tuned"], str(data), ctx.runs.run_dir, None, 10**6)
    outside = tmp_path / "outside.jsonl"
    outside.write_text("{}\n")
    with pytest.raises(PathError):
        ctx.evals.config(["tuned"], str(outside), ctx.runs.run_dir, None, 8)


def test_the_scheduler_refuses_an_eval_job_that_reads_outside(ctx: AppContext, tmp_path: Path):
    job = EvalDir(ctx.workspace / "evals" / "hand")
    job.path.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    job.config.write_text(f"models: [base, {elsewhere}]\ndata: {{path: {ctx.uploads / 'x.jsonl'}}}\n")
    with pytest.raises(PathError):
        ctx.jobs.boundary.admit(job)


# ---------------------------------------------------------------------------------------------- the tab's view


def finished_eval(ctx: AppContext, name: str, state: str, error: str | None = None) -> EvalDir:
    """An evaluation folder as the engine leaves it: status, events and, when completed, its results."""
    job = EvalDir(ctx.workspace / "evals" / name)
    job.path.mkdir(parents=True)
    (job.path / "status.json").write_text(json.dumps({"state": state, "pid": None, "error": error}))
    (job.path / "events.jsonl").write_text(json.dumps({"kind": "status", "t": 1, "state": state, "error": error})
                                           + "\n")
    if state == "completed":
        models = {name: METRICS["models"][name] for name in ("base", "tuned")}
        (job.path / "metrics.json").write_text(json.dumps({**METRICS, "models": models, "general": None}))
        (job.path / "predictions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in PREDICTIONS))
    return job


def test_the_tab_shows_a_completed_evaluation_and_says_why_another_has_no_results(ctx: AppContext):
    from webui.tabs import evaluate

    say = evaluate.words(None)
    job = finished_eval(ctx, "eval-1", "completed")
    status, _, table, csv_button, rows, name, timer = evaluate.job_view(ctx, job, False, say)
    assert "eval-1" in status and name == "eval-1" and not timer.active
    assert "<tr><td>tuned</td>" in table and eval_table.BEST_MARK in table
    assert csv_button["visible"] and Path(csv_button["value"]).read_text() == eval_table.table_csv(
        json.loads(job.metrics.read_text()))
    assert rows["value"]["headers"] == ["row", "prompt", "reference", "base", "tuned"]
    assert len(rows["value"]["data"]) == 3
    assert len(evaluate.filter_rows(ctx, "eval-1", True)["value"]["data"]) == 2
    assert evaluate.show_latest(ctx, False)[5] == "eval-1"  # the page opened: the newest evaluation
    failed = finished_eval(ctx, "eval-2", "failed", error="The test set has no rows.")
    status, _, table, csv_button, rows, _, _ = evaluate.job_view(ctx, failed, False, say)
    assert "The test set has no rows." in status and table == "" and not csv_button["visible"]
    stopped = finished_eval(ctx, "eval-3", "stopped")
    assert "stopped" in evaluate.job_view(ctx, stopped, False, say)[0]


def test_the_judge_column_its_note_and_the_per_tool_table():
    calls = {"name_accuracy": 1.0, "per_tool": {"get_weather": {"rows": 2, "name_accuracy": 1.0,
                                                               "arguments_exact": 0.5, "argument_keys": 0.75},
                                                "add": {"rows": 1, "name_accuracy": 0.0, "arguments_exact": 0.0,
                                                        "argument_keys": 0.0}}}
    metrics = {"models": {"base": {"exact_match": 0.0, "judge": 2.5,
                                   "tool_calls": {"name_accuracy": 0.0, "per_tool": {
                                       "get_weather": {"rows": 2, "name_accuracy": 0.0, "arguments_exact": 0.0,
                                                       "argument_keys": 0.0}}}},
                          "tuned": {"exact_match": 1.0, "judge": 8.0, "tool_calls": calls}},
               "judge": {"model": "grader", "rows": 3, "scored": 2, "failed": 1, "error": None}}
    titles = [column.title for column in eval_table.columns(metrics)]
    html = eval_table.results_html(metrics)
    mark = eval_table.BEST_MARK
    assert cells(html, "tuned")[titles.index("judge (1-10)")] == f"<strong class='wb-best'>8.00 {mark}</strong>"
    assert "1 of 3 replies could not be read" in html
    tools = html.split("wb-eval-tools", 1)[1]
    assert tools.index("<td>add</td>") < tools.index("<td>get_weather</td>")  # by tool name
    weather = tools.split("<td>get_weather</td><td>tuned</td>", 1)[1].split("</tr>", 1)[0]
    assert weather.startswith("<td>2</td><td><strong class='wb-best'>1.000") and "0.750" in weather
    assert "<td>add</td><td>tuned</td><td>1</td><td>0.000</td>" in tools  # one model alone: no mark
    stopped = {**metrics, "judge": {**metrics["judge"], "error": "The judge at X cannot be reached (refused)."}}
    assert "The judge stopped: The judge at X cannot be reached" in eval_table.results_html(stopped)
    assert eval_table.tools_html({"models": {"base": {"loss": 1.0}}}) == ""
    chinese = evaluate_words("zh-CN")  # the note in the visitor's language (it was English on the Chinese page)
    assert "评审模型 grader：3 条回复中有 1 条无法读取" in eval_table.results_html(metrics, chinese)


def test_the_runs_table_says_which_checkpoint_a_run_kept_and_why():
    from webui.components.render import RUN_HEADERS, kept

    assert RUN_HEADERS[-1] == "kept"
    best = {"metric": "eval_loss", "value": 0.58631, "step": 4, "stopped_early": False, "ended_at": 8}
    assert kept(best) == "step 4: best eval_loss 0.5863"
    assert kept({**best, "stopped_early": True}) == "step 4: best eval_loss 0.5863; stopped early at step 8"
    assert kept(None) == kept({"step": "4"}) == "–"  # no validation split, or a damaged entry


def test_an_evaluation_under_way_names_its_state_in_the_visitors_language(ctx: AppContext):
    """newuser5: the Chinese page read "正在评估（eval-…）：starting" (the engine's state word, untranslated)."""
    from types import SimpleNamespace

    from webui.tabs import evaluate

    job = finished_eval(ctx, "eval-4", "queued")  # queued in the page's lane: under way, no process yet
    chinese = evaluate.words(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={}))
    status, _, _, _, _, name, timer = evaluate.job_view(ctx, job, False, chinese)
    assert name == "eval-4" and timer.active
    assert "排队中" in status and "queued" not in status, status
    assert "queued" in evaluate.job_view(ctx, job, False, evaluate.words(None))[0]


def test_a_reload_picks_the_newest_evaluations_choices_again(ctx: AppContext, tmp_path: Path):
    """newuser5: after a reload the tab showed the newest evaluation (base, two runs) under a form that had gone
    back to base alone and the first dataset; the form now holds that evaluation's choices again."""
    from webui.tabs import evaluate

    for name in ("tuned", "other"):  # finished runs with their weights: the model list offers them
        adapter = write_run(ctx, name) / "adapter"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}")
        (adapter / "adapter_model.safetensors").write_bytes(b"")
    data = ctx.uploads / "test.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    (ctx.uploads / "newer.jsonl").write_text('{"instruction": "c", "output": "d"}\n')  # listed first
    fresh = evaluate.opened(AppContext.create(tmp_path / "fresh"))  # no evaluation yet: the defaults stay
    assert fresh[0]["choices"] == ["base"] and "value" not in fresh[0] and "value" not in fresh[1]
    config = ctx.evals.config(["base", "other", "tuned"], str(data.resolve()), ctx.runs.run_dir, 3, 12,
                              general=False)
    ctx.evals.start(config)
    models, test_set, max_rows, tokens, general, maps = evaluate.opened(ctx)
    assert models["value"] == ["base", "other", "tuned"] and test_set["value"] == str(data.resolve())
    assert (max_rows, tokens, general, maps) == (3, 12, False, {})  # no column map: the Columns group's picks
    # an evaluation from the command line names its test set as its config wrote it: the same file is picked
    written = ctx.evals.latest().path / "config.yaml"
    cli = yaml.safe_load(written.read_text())
    cli["data"]["path"] = str(ctx.workspace / "configs" / ".." / "uploads" / "test.jsonl")
    written.write_text(yaml.safe_dump(cli))
    assert evaluate.opened(ctx)[1]["value"] == str(data.resolve())


def evaluate_words(language: str):
    from types import SimpleNamespace

    from webui.i18n import words

    return words(SimpleNamespace(headers={"accept-language": language}, cookies={}))


def test_the_evaluate_forms_refusals_are_in_the_visitors_language(ctx: AppContext):
    from webui.i18n import sentence
    from webui.jobs.evals import EvalChoiceError

    chinese = SimpleNamespace(headers={"accept-language": "zh-CN"}, cookies={})
    for models, test_set, said_zh in (([], "x.jsonl", "请至少选择一个要评估的模型"), (["base"], "", "请选择测试集")):
        with pytest.raises(EvalChoiceError) as refused:
            ctx.evals.config(models, test_set, ctx.runs.run_dir, 3, 12, general=False)
        assert said_zh in sentence(chinese, refused.value), sentence(chinese, refused.value)

