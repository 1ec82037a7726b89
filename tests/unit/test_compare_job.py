"""Issue 26: a comparison is a job (engine/compare/job.py): its folder's status.json and events.jsonl say where it is
(training or evaluating which method, how many done), through the reporter every job uses; a stop ends it `stopped`
and it resumes as a whole; a failed method fails it, naming the method, while the others still train. Each
method's evaluation fills the table's exact match, ROUGE-L, BLEU and general-change columns and the answers to the
prompts. In process: each child engine process stands in as the folder it leaves."""

from __future__ import annotations

import json
from pathlib import Path

from engine.compare.table import EVALUATED, CompareDir
from engine.config_compare import parse_compare_config
from engine.jobs.kinds import EVAL, TRAIN
from engine.sentences import status_error, worded
from tests.unit.compare_job import events_of, finish_eval, finish_run, run_compare, states_of
from webui.i18n import translations

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "models" / "workbench-demo-5m"
DATA = ROOT / "assets" / "datasets" / "identity_alpaca.json"


def config_of(tmp_path: Path, methods: list[str], evaluate: bool = True, **presets):
    return parse_compare_config({"model": {"name_or_path": str(DEMO)}, "data": {"path": str(DATA), "val_size": 0.2},
                                 "train": {"max_steps": 2, "batch_size": 2, "cutoff_len": 64}, "methods": methods,
                                 "evaluate": evaluate, "prompts": ["Who are you?"], "presets": presets,
                                 "output_dir": str(tmp_path / "compares" / "c"), "runs_dir": str(tmp_path / "runs")})


class Children:
    """Stands in for each child engine process: records what was started, finishes it as told."""

    def __init__(self, compare: CompareDir, config, fail: str | None = None, stop_at: str | None = None):
        self.compare, self.config, self.fail, self.stop_at, self.started = compare, config, fail, stop_at, []

    def __call__(self, kind, job, stop) -> int:
        self.started.append((kind.name, job.name))
        status = self.compare.read_status()  # the comparison says what it does while its child runs
        assert status["state"] == ("training" if kind is TRAIN else "evaluating") and status["pid"] is not None
        if kind is EVAL:  # the base answers "a" to all four general prompts; each method changes one of them
            base = job.name == "base"
            finish_eval(job, 0.0 if base else 0.5, ["a"] * 4 if base else ["b", "a", "a", "a"],
                        answer=f"I am {job.name}.")
            return 0
        method = job.name.removeprefix("c-")
        if method == self.stop_at:
            stop.requested = True  # SIGTERM arrived: the child saves and ends stopped
            finish_run(job, "stopped")
            return 0
        finish_run(job, "failed" if method == self.fail else "completed", eval_loss=1.5)
        return 1 if method == self.fail else 0


def test_a_comparison_reports_each_method_as_it_trains_and_evaluates_and_fills_the_evaluation_columns(
        tmp_path, monkeypatch):
    config = config_of(tmp_path, ["lora", "ia3"])
    compare = CompareDir(Path(config.output_dir))
    children = Children(compare, config)
    assert run_compare(compare, config, children, monkeypatch) == 0
    assert children.started == [("train", "c-lora"), ("eval", "base"), ("eval", "lora"), ("train", "c-ia3"),
                                ("eval", "ia3")]  # the base once, on the first completed run's held-out rows
    assert states_of(compare) == [("starting", None), ("training", "lora"), ("evaluating", "base"),
                                  ("evaluating", "lora"), ("training", "ia3"), ("evaluating", "ia3"),
                                  ("completed", None)]
    assert [(e["step"], e["total"]) for e in events_of(compare) if e["kind"] == "progress"] == [(1, 2), (2, 2)]
    status = compare.read_status()
    assert status["result"]["completed"] == 2 and status["result"]["table"] == str(compare.table_md)
    table = json.loads(compare.table_json.read_text(encoding="utf-8"))
    for row in table["rows"]:
        evaluation = json.loads(compare.evaluation(row["method"]).metrics.read_text(encoding="utf-8"))
        mine = evaluation["models"][f"c-{row['method']}"]
        assert (row["exact_match"], row["rouge_l"], row["bleu"]) == (mine["exact_match"], mine["rouge_l"],
                                                                     mine["bleu"]) == (0.5, 0.25, 5.0)
        assert row["general_changed"] == 0.25  # one general answer of four differs from the base's
        eval_config = compare.evaluation(row["method"]).read_config()  # greedy, the comparison's sizes
        assert eval_config.models == [row["run"]] and eval_config.validation_of == row["run"]
        assert eval_config.sampling.temperature == 0 and eval_config.sampling.max_new_tokens == 32
        assert eval_config.max_rows == 16 and eval_config.general and eval_config.prompts == ["Who are you?"]
    assert table["base"] == {"exact_match": 0.0, "rouge_l": 0.0, "bleu": 0.0}
    assert compare.evaluation("base").read_config().models == ["base"]
    assert table["answers"] == [{"prompt": "Who are you?",
                                 "answers": {"base": "I am base.", "lora": "I am lora.", "ia3": "I am ia3."}}]
    assert "- ia3: I am ia3." in compare.table_md.read_text(encoding="utf-8")
    assert all(key.key in table["columns"] for key in EVALUATED)
    assert "exact_match" not in table["best"]  # the same for every method: no best to mark

    again = Children(compare, config)  # everything done: nothing is started again
    assert run_compare(compare, config, again, monkeypatch) == 0 and again.started == []
    retrained = config_of(tmp_path, ["lora", "ia3"], ia3={"learning_rate": 0.02})  # ia3's run and evaluation again
    third = Children(compare, retrained)
    assert run_compare(compare, retrained, third, monkeypatch) == 0
    assert third.started == [("train", "c-ia3"), ("eval", "ia3")]


def test_a_stopped_comparison_ends_stopped_and_resumes_as_a_whole(tmp_path, monkeypatch):
    config = config_of(tmp_path, ["lora", "prompt", "ia3"], evaluate=False)
    compare = CompareDir(Path(config.output_dir))
    children = Children(compare, config, stop_at="prompt")
    assert run_compare(compare, config, children, monkeypatch) == 0
    assert children.started == [("train", "c-lora"), ("train", "c-prompt")]  # ia3 never started
    assert states_of(compare)[-1] == ("stopped", None)
    assert [row["state"] for row in json.loads(compare.table_json.read_text())["rows"]] == [
        "completed", "stopped", "not started"]
    resumed = Children(compare, config)
    assert run_compare(compare, config, resumed, monkeypatch) == 0
    assert resumed.started == [("train", "c-prompt"), ("train", "c-ia3")]
    assert compare.read_status()["state"] == "completed"


def test_a_failed_method_fails_the_comparison_naming_it_while_the_others_still_train(tmp_path, monkeypatch):
    config = config_of(tmp_path, ["lora", "ia3"])
    compare = CompareDir(Path(config.output_dir))
    children = Children(compare, config, fail="lora")
    assert run_compare(compare, config, children, monkeypatch) == 1
    assert children.started == [("train", "c-lora"), ("train", "c-ia3"), ("eval", "base"), ("eval", "ia3")]
    status = compare.read_status()
    assert status["state"] == "failed" and status["error"].startswith("lora failed (lora: it broke); ")  # its reason
    assert status["error_key"] == "engine.log.compare_job_failed"  # the page words it (zh.json)
    assert worded(status_error(status), translations()["zh"]).startswith("lora 失败（lora：it broke）；")
    logged = [event["message"] for event in events_of(compare) if event["kind"] == "log"]
    assert any(line.startswith("lora: failed: it broke") for line in logged)
    table = json.loads(compare.table_json.read_text(encoding="utf-8"))
    assert [row["exact_match"] for row in table["rows"]] == [None, 0.5]


def test_a_comparison_of_a_pairs_file_fails_before_any_method_trains(tmp_path, monkeypatch):
    """`launch.py compare` on preference pairs: one sentence saying what a comparison trains on, no method started
    (each failed with training's advice to set train.stage, which a comparison cannot evaluate)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "Hi", "chosen": "Hello.", "rejected": "Go."}\n' * 4, encoding="utf-8")
    config = config_of(tmp_path, ["lora"])
    config = config.model_copy(update={"data": config.data.model_copy(update={"path": str(pairs)})})
    compare = CompareDir(Path(config.output_dir))
    children = Children(compare, config)
    assert run_compare(compare, config, children, monkeypatch) == 1 and children.started == []
    assert compare.read_status()["error"].startswith("pairs.jsonl holds preference pairs (prompt, chosen, rejected), "
                                                     "but a comparison trains every method with supervised")
