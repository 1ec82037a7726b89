"""The eval job on a tiny real Llama and the LoRA run that test_chat.py trains (shared through its `trained_runs`: in
one session the run is trained once for both modules): base against tuned on the memorised rows, the loss checked
against a computation of its own, and a stopped evaluation writing nothing."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest
import yaml

from engine.config_eval import load_eval_config
from engine.jobs.events import final_status, read_events
from engine.jobs.kinds import EVAL
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import EvalDir
from tests.cli import engine_process_state_kept
from tests.engine.test_chat import MEMORY, trained_runs
from tests.fake_judge import fake_judge


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_runs(tmp_path_factory, {"lora": ("chatml", "lora", {})})["lora"]


def write_eval(folder: Path, run: Path, **extra: object) -> Path:
    """An evaluation's config (base and the run, on the memorised rows) and its job folder's config.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "memory.json").write_text(json.dumps(MEMORY), encoding="utf-8")
    raw = {"models": ["base", str(run)], "data": {"path": "memory.json"},
           "sampling": {"max_new_tokens": 24}, "batch_size": 10, "output_dir": "job", **extra}
    (folder / "eval.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_eval_config(folder / "eval.yaml")
    job = EvalDir(Path(config.output_dir))
    job.path.mkdir(parents=True, exist_ok=True)
    job.config.write_text(config.to_yaml(), encoding="utf-8")
    return job.path


def run_eval(path: Path) -> int:
    with engine_process_state_kept():
        return run_job(EVAL, path)


def direct_loss(run: Path, rows: list[dict]) -> float:
    """The mean negative log-likelihood of the replies' tokens, computed here with transformers and peft alone on
    the rows as training tokenizes them."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.data.pipeline import tokenize_rows

    adapter = run / "adapter"
    base_name = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_name), adapter).eval()
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    tokenized, _ = tokenize_rows(rows, tokenizer, 512, "truncate")
    total, count = 0.0, 0
    with torch.no_grad():
        for row in tokenized:
            logits = model(input_ids=torch.tensor([row["input_ids"]])).logits[0, :-1].float()
            labels = torch.tensor(row["labels"][1:])
            keep = labels != -100
            total += float(torch.nn.functional.cross_entropy(logits[keep], labels[keep], reduction="sum"))
            count += int(keep.sum())
    return total / count


def test_the_tuned_run_beats_the_base_on_its_rows_and_the_loss_is_the_direct_one(lora_run, tmp_path):
    """...and the judge (a fake OpenAI-compatible server on a thread here: 9 for the answer equal to the reference,
    2 for any other) scores both models' answers, blind, its replies kept in judge.jsonl."""
    with fake_judge() as (url, requests):
        job = EvalDir(write_eval(tmp_path, lora_run, judge={"base_url": url, "model": "grader"}))
        assert run_eval(job.path) == 0, job.log.read_text(encoding="utf-8")[-3000:]
    assert final_status(read_events(job.events)).state == "completed"
    metrics = job.read_metrics()
    base, tuned = metrics["models"]["base"], metrics["models"]["run"]
    assert base["exact_match"] <= 0.5 and tuned["exact_match"] >= 0.8
    assert tuned["rouge_l"] > base["rouge_l"] and tuned["loss"] < base["loss"]
    assert metrics["best"]["exact_match"] == ["run"] and metrics["best"]["loss"] == ["run"]

    from engine.data.formats import normalise
    rows = normalise(MEMORY, "alpaca", "memory.json")
    assert tuned["loss"] == pytest.approx(direct_loss(lora_run, rows), abs=1e-4)
    assert tuned["perplexity"] == pytest.approx(math.exp(tuned["loss"]), rel=1e-6)

    lines = [json.loads(line) for line in job.predictions.read_text(encoding="utf-8").splitlines()]
    assert [line["row"] for line in lines] == [1, 2]
    assert [line["reference"] for line in lines] == [row["output"] for row in MEMORY]
    assert [line["answers"]["run"] for line in lines] == [row["output"] for row in MEMORY]
    assert all(line["stopped"]["run"] for line in lines)
    assert tuned["stopped_share"] == 1.0
    events = read_events(job.events)
    progress = [event for event in events if event.kind == "progress"]
    # 2 models x (2 rows scored + 2 answered + 10 general prompts answered)
    assert progress and progress[-1].step == progress[-1].total == 28
    general = metrics["general"]
    assert general["prompts"] == 10 and set(general["models"]) == {"base", "run"}
    assert "changed_share" not in general["models"]["base"] and 0 <= general["models"]["run"]["changed_share"] <= 1
    assert len(job.general.read_text(encoding="utf-8").splitlines()) == 10
    log = job.log.read_text(encoding="utf-8")
    assert "exact" in log and "rougeL" in log and "judge" in log  # the table

    assert base["judge"] == 2.0 and tuned["judge"] == 9.0 and metrics["best"]["judge"] == ["run"]
    assert metrics["judge"]["model"] == "grader" and metrics["judge"]["scored"] == 2
    assert metrics["judge"]["general"]["scored"] == 10 and general["models"]["run"]["judge"] == 2.0
    judged = [json.loads(line) for line in job.judge.read_text(encoding="utf-8").splitlines()]
    assert len(judged) == len(requests) == 12 and {line["set"] for line in judged} == {"test", "general"}
    assert all(sorted(line["order"]) == ["base", "run"] and "reply" in line for line in judged)


def test_a_stopped_evaluation_leaves_no_metrics_and_a_rerun_completes(lora_run, tmp_path, monkeypatch):
    import engine.eval.job as job_module

    path = write_eval(tmp_path, lora_run, max_rows=1, general=False)
    job = EvalDir(path)
    job.metrics.write_text('{"models": {}}', encoding="utf-8")  # an earlier attempt's: must not survive
    evaluate_one = job_module.evaluate_one

    def stop_after_the_first_model(*args, **kwargs):
        result = evaluate_one(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # as the page's Stop: honoured at the next batch
        return result

    monkeypatch.setattr(job_module, "evaluate_one", stop_after_the_first_model)
    assert run_eval(path) == 0
    assert final_status(read_events(job.events)).state == "stopped"
    assert not job.metrics.exists() and not job.predictions.exists()

    monkeypatch.setattr(job_module, "evaluate_one", evaluate_one)
    assert run_eval(path) == 0
    assert final_status(read_events(job.events)).state == "completed"
    assert set(job.read_metrics()["models"]) == {"base", "run"}


def test_a_runs_validation_split_is_the_rows_training_held_out(lora_run, tmp_path):
    """validation_of reads the run's data with its seed, drops what training drops, and holds out the same rows
    as build_splits (compared here on their tokens; only the run's tokenizer is loaded, no model)."""
    import shutil

    from engine.config import load_config
    from engine.data.pipeline import build_splits, tokenize_rows
    from engine.eval.testset import load_test_rows
    from engine.model.loading import load_tokenizer

    rows = [{"instruction": f"Question {n}?", "output": f"Answer {n}."} for n in range(9)]
    rows[4]["output"] = "word " * 600  # longer than cutoff_len under overlength drop: training drops it, so must this
    (tmp_path / "data.json").write_text(json.dumps(rows), encoding="utf-8")
    raw = yaml.safe_load((lora_run / "config.yaml").read_text(encoding="utf-8"))
    raw.update(output_dir=str(tmp_path / "run"), data={"path": str(tmp_path / "data.json"), "val_size": 0.4,
                                                          "overlength": "drop"})
    raw["train"]["seed"] = 7
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    shutil.copytree(lora_run / "adapter", tmp_path / "run" / "adapter")
    config = load_config(tmp_path / "run" / "config.yaml")
    tokenizer = load_tokenizer(config.model.model_copy(update={"name_or_path": str(tmp_path / "run" / "adapter")}))
    _, val, _ = build_splits(config, tokenizer)

    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({"models": ["run"], "validation_of": "run"}), encoding="utf-8")
    tests, where = load_test_rows(load_eval_config(tmp_path / "eval.yaml"))
    assert len(tests) == len(val) == 3 and "validation rows of run" in where
    tokenized, _ = tokenize_rows([test.row for test in tests], tokenizer, config.train.cutoff_len, "truncate")
    assert [row["input_ids"] for row in tokenized] == [row["input_ids"] for row in val]


def test_the_command_refuses_to_replace_a_completed_evaluation(tmp_path, capsys):
    from engine.eval.job import main

    (tmp_path / "t.json").write_text(json.dumps(MEMORY), encoding="utf-8")
    (tmp_path / "e.yaml").write_text(yaml.safe_dump({"models": ["base"], "base": "x", "data": {"path": "t.json"}}),
                                     encoding="utf-8")
    done = tmp_path / "ws" / "evals" / "e"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}", encoding="utf-8")
    assert main([str(tmp_path / "e.yaml"), "--workspace", str(tmp_path / "ws")]) == 2
    assert "--overwrite" in capsys.readouterr().err and (done / "metrics.json").read_text() == "{}"


def test_an_export_answers_as_its_run_and_a_plain_text_set_is_scored_for_loss_alone(lora_run, tmp_path):
    """A merged export (written here in-process by engine.export) is evaluated as a whole model beside its run's
    adapter: same answers, same loss; a plain-text test set (format text) has the loss alone, the direct one."""
    from engine.data.formats import normalise
    from engine.export.merge import run_export

    merged = tmp_path / "merged"
    result = run_export(lora_run, merged, log=lambda _line: None)
    assert result.state == "completed", result.error
    job = EvalDir(write_eval(tmp_path / "export", lora_run, models=[str(lora_run), str(merged)], general=False))
    assert run_eval(job.path) == 0, job.log.read_text(encoding="utf-8")[-3000:]
    models = job.read_metrics()["models"]
    assert set(models) == {"run", "merged"} and models["merged"]["kind"] != models["run"]["kind"]
    assert models["merged"]["loss"] == pytest.approx(models["run"]["loss"], abs=1e-4)
    assert models["merged"]["exact_match"] == models["run"]["exact_match"] == 1.0
    lines = [json.loads(line) for line in job.predictions.read_text(encoding="utf-8").splitlines()]
    assert all(line["answers"]["merged"] == line["answers"]["run"] for line in lines)

    text = [{"text": "The secret word is pineapple."}, {"text": "I am Zork, the tiny assistant. The secret word."}]
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "plain.json").write_text(json.dumps(text), encoding="utf-8")
    job = EvalDir(write_eval(tmp_path / "plain", lora_run, models=[str(lora_run)], general=False,
                             data={"path": "plain.json", "format": "text"}))
    assert run_eval(job.path) == 0, job.log.read_text(encoding="utf-8")[-3000:]
    metrics = job.read_metrics()
    run = metrics["models"]["run"]
    assert run["loss_rows"] == 2 and "exact_match" not in run and "rouge_l" not in run
    assert metrics["best"] == {}  # one model: nothing to be best against
    assert run["loss"] == pytest.approx(direct_loss(lora_run, normalise(text, "text", "plain.json")), abs=1e-4)
    lines = [json.loads(line) for line in job.predictions.read_text(encoding="utf-8").splitlines()]
    assert [line["prompt"] for line in lines] == [None, None] and all(line["answers"] == {} for line in lines)


def saved_adapter(folder: Path, model_path: Path, config: object, scale: float) -> Path:
    """A PEFT adapter folder of `config` over the tiny model, its weights set to `scale` so that it changes the
    answers (a fresh LoRA or IA3 adapter is the identity), with the base's tokenizer beside it as a run keeps it."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.data.tokens import ensure_chat_template

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_path), config)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if weight.requires_grad and ("lora_B" in name or "ia3_l" in name):
                weight.fill_(scale)
    model.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    ensure_chat_template(tokenizer)  # a run keeps the template it trained with (ChatML here)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_lora_and_an_ia3_adapter_are_evaluated_together_each_over_its_own_load(tiny_model, tmp_path):
    """newuser2: models [base, a LoRA run, an IA3 run] loaded the model, then failed ("These adapters are of
    different kinds (IA3, LORA) and peft cannot stack them"): peft stacks one kind over one base. The IA3 adapter is
    now loaded over a base of its own when its turn comes, and the results are those of three models, in the order
    named (metrics.json's `order`: its keys are written sorted)."""
    from peft import IA3Config, LoraConfig

    lora = saved_adapter(tmp_path / "lora", tiny_model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]), 0.05)
    ia3 = saved_adapter(tmp_path / "ia3", tiny_model, IA3Config(), 3.0)
    job = EvalDir(write_eval(tmp_path, lora, models=["base", str(lora), str(ia3)], general=False,
                             sampling={"max_new_tokens": 4}))
    assert run_eval(job.path) == 0, job.log.read_text(encoding="utf-8")[-3000:]
    metrics = job.read_metrics()
    assert metrics["order"] == ["base", "lora", "ia3"] and set(metrics["models"]) == set(metrics["order"])
    losses = [metrics["models"][name]["loss"] for name in ("base", "ia3", "lora")]
    assert len({round(loss, 6) for loss in losses}) == 3, losses  # each adapter answered, over a plain base
    log = job.log.read_text(encoding="utf-8")
    assert "of another kind (IA3)" in log and "different kinds" not in log  # LoRA, named first, loads with base
