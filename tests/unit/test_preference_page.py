"""The page's side of preference training (issue 21): a DPO run's curves as TRL names them drawn on the Train tab's
plot and overlaid on the Runs tab, and the Runs table naming the stage and the run a run started from."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jobs.events import Metrics, Status, to_line
from engine.jobs.rundir import RunDir
from engine.train.objectives import DPO_CURVES
from webui.components.render import loss_colors, loss_frame, runs_rows
from webui.forms import mapping as forms
from webui.jobs.monitor import JobMonitor, JobSnapshot
from webui.jobs.runs import read_info


def dpo_run(folder: Path, margins: list[float]) -> RunDir:
    """A run folder whose events are a DPO run's: loss and TRL's reward curves at each step."""
    folder.mkdir(parents=True)
    lines = [to_line(Status(state="training", t=1.0))]
    for step, margin in enumerate(margins, 1):
        values = {"loss": 0.7 - margin / 10, "rewards/chosen": margin / 2, "rewards/rejected": -margin / 2,
                  "rewards/margins": margin, "rewards/accuracies": min(1.0, margin), "learning_rate": 1e-3}
        lines.append(to_line(Metrics(step=step, values=values, t=1.0)))
    (folder / "events.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return RunDir(folder)


def test_a_dpo_runs_reward_curves_are_drawn_and_overlaid(tmp_path: Path):
    first = JobMonitor(dpo_run(tmp_path / "a", [0.0, 0.4, 0.9])).refresh()
    frame = loss_frame({"a": first})
    assert set(frame["series"]) == {"train", *DPO_CURVES}  # the train tab: loss and every reward curve TRL logs
    margins = frame[frame["series"] == "rewards/margins"]
    assert list(margins["step"]) == [1, 2, 3] and list(margins["loss"]) == [0.0, 0.4, 0.9]
    second = JobMonitor(dpo_run(tmp_path / "b", [0.1, 0.2])).refresh()
    overlaid = loss_frame({"a": first, "b": second})  # the Runs tab, two runs selected
    assert {"a · rewards/margins", "b · rewards/margins", "a · train", "b · rewards/accuracies"} <= set(
        overlaid["series"])
    assert set(loss_colors({"a": first, "b": second})) == set(overlaid["series"])  # every series drawn has a colour


def test_the_runs_table_names_the_stage_and_the_run_it_started_from(tmp_path: Path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go."}\n', encoding="utf-8")
    runs = tmp_path / "runs"
    for name, stage, adapter in (("my-sft", "sft", None), ("my-dpo", "dpo", str(runs / "my-sft"))):
        values = {**forms.defaults(), forms.STAGE: stage, forms.ADAPTER: adapter}
        config = forms.to_config(values, model="tiny", data_path=str(data), output_dir=str(runs / name))
        (runs / name).mkdir(parents=True)
        (runs / name / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    rows = {row[0]: row[2] for row in runs_rows([read_info(RunDir(runs / n)) for n in ("my-sft", "my-dpo")])}
    assert rows == {"my-sft": "lora", "my-dpo": "lora · dpo, from my-sft"}


def chat_turn(role: str, text: str) -> dict:
    """A message as the Chat tab's Chatbot keeps it (webui.jobs.chat_tools.text_message)."""
    return {"role": role, "content": [{"type": "text", "text": text}]}


def test_rated_answers_grow_a_pairs_file_that_trains_as_pairs_and_is_listed_with_its_count(tmp_path: Path):
    """Each rating appends one pair (answer 1 the tuned model's, 2 the base's, or a written answer chosen over
    answer 1) in the shape the preference stages read; the Train tab lists the file with its count."""
    from engine.config import DataConfig
    from engine.data.pairfile import PairError
    from engine.data.preference import load_pairs
    from webui.forms.datasets import dataset_choices
    from webui.jobs.pairs import rate
    from webui.jobs.paths import PathError

    uploads = tmp_path / "uploads"
    tuned = [chat_turn("user", "Hi"), chat_turn("assistant", "Hello! How can I help?")]
    base = [chat_turn("user", "Hi"), chat_turn("assistant", "hi hi hi")]
    path, count = rate(uploads, "my-pairs", tuned, base, better=1, system="Be kind.")
    assert (path, count) == (uploads / "pairs" / "my-pairs.jsonl", 1)
    assert rate(uploads, "my-pairs", tuned, base, better=2)[1] == 2
    assert rate(uploads, "my-pairs.jsonl", tuned, [], better=None, written="Hello, friend!")[1] == 3
    pairs = load_pairs(DataConfig(path=str(path)), seed=0).rows
    assert [(p["chosen"]["content"], p["rejected"]["content"]) for p in pairs] == [
        ("Hello! How can I help?", "hi hi hi"), ("hi hi hi", "Hello! How can I help?"),
        ("Hello, friend!", "Hello! How can I help?")]
    assert pairs[0]["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    assert ("pairs/my-pairs.jsonl · 3 pairs", str(path.resolve())) in dataset_choices(uploads, tmp_path / "assets")

    with pytest.raises(PairError, match="Rating needs two answers: tick side by side"):
        rate(uploads, "my-pairs", tuned, [], better=2)
    with pytest.raises(PairError, match="The two answers are the same"):
        rate(uploads, "my-pairs", tuned, tuned, better=1)
    with pytest.raises(PairError, match="There is no answer to rate yet"):
        rate(uploads, "my-pairs", tuned[:1], base, better=1)
    with pytest.raises(PathError):
        rate(uploads, "../escape", tuned, base, better=1)
    assert rate(uploads, "my-pairs", tuned, base, better=1)[1] == 4  # nothing was written by the refusals


def test_the_pairs_label_and_the_plots_y_title_follow_the_visitors_language(tmp_path: Path):
    """The dataset lists name a rated pairs file with its count, and the loss plot's y-axis reads "loss" only
    while it draws losses: both through the locales (en, zh)."""
    from types import SimpleNamespace

    from webui.components.plots import recolour_titled
    from webui.components.render import y_title_key
    from webui.forms.datasets import dataset_choices
    from webui.i18n import pairs_label
    from webui.jobs.pairs import rate

    uploads = tmp_path / "uploads"
    tuned = [chat_turn("user", "Hi"), chat_turn("assistant", "Hello! How can I help?")]
    base = [chat_turn("user", "Hi"), chat_turn("assistant", "hi hi hi")]
    path, _ = rate(uploads, "rated", tuned, base, better=1)
    zh = SimpleNamespace(headers={"accept-language": "zh-CN,zh"}, cookies={})
    labels = {lang: [label for label, value in dataset_choices(uploads, tmp_path, pairs_label(request))
                     if value == str(path.resolve())] for lang, request in (("en", None), ("zh", zh))}
    assert labels == {"en": ["pairs/rated.jsonl · 1 pair"], "zh": ["pairs/rated.jsonl · 1 对偏好"]}
    rate(uploads, "rated", tuned, base, better=2)
    assert ("pairs/rated.jsonl · 2 pairs", str(path.resolve())) in dataset_choices(uploads, tmp_path,
                                                                                   pairs_label(None))

    from webui.context import AppContext
    from webui.tabs.train.handlers import list_start_runs

    ctx = AppContext.create(tmp_path / "ws")  # Start from run's "none", listed again as the page opens
    assert list_start_runs(ctx, None, zh)["choices"][0] == ("无：从基座模型开始", "")
    assert list_start_runs(ctx, None)["choices"][0] == ("none: start from the base", "")

    assert y_title_key(["train", "eval"]) == y_title_key(["sft · train", "dpo · eval"]) == "plot.loss"
    assert y_title_key(["train", "rewards/margins"]) == y_title_key(["a · train", "b · kl"]) == "plot.value"
    drawn = {"train": "#000", "rewards/chosen": "#111"}
    assert recolour_titled({"train": "#000"}, None)["y_title"] == "loss"
    assert (recolour_titled(drawn, None)["y_title"], recolour_titled(drawn, zh)["y_title"]) == ("value", "数值")
    assert recolour_titled(drawn, None)["color_map"] == drawn
    # the legend in the visitor's language (the Chinese Runs tab said "long-lora · train"), the title still "loss"
    from webui.i18n import words

    run = JobSnapshot(name="a", curves={"loss": [(1, 2.0)], "eval_loss": [(1, 2.5)]})
    chinese = words(zh)
    assert set(loss_frame({"a": run, "b": run}, chinese)["series"]) == {"a · 训练", "a · 验证", "b · 训练", "b · 验证"}
    colors = loss_colors({"a": run}, chinese)
    assert set(colors) == {"训练", "验证"} and recolour_titled(colors, zh)["y_title"] == "损失"
