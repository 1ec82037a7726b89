"""The page's side of preference training (issue 21): a DPO run's curves as TRL names them drawn on the Train tab's
plot and overlaid on the Runs tab, and the Runs table naming the stage and the run a run started from."""

from __future__ import annotations

from pathlib import Path

from engine.jobs.events import Metrics, Status, to_line
from engine.jobs.rundir import RunDir
from engine.train.objectives import DPO_CURVES
from webui.components.render import loss_colors, loss_frame, runs_rows
from webui.forms import mapping as forms
from webui.jobs.monitor import JobMonitor
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
