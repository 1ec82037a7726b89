"""`model.adapter: RUN_DIR` (engine/model/start.py): the checks before anything loads, one sentence each; the
run's config.yaml and metrics.json name the starting run; the exported model card's lineage names the base, the
stage, the starting run and the reference (engine/export/model_card.py). The merge itself is exercised by
tests/engine/test_preference_chain.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config import parse_config
from engine.export.model_card import lineage, model_card
from engine.export.verify import Verification
from engine.model.start import StartError, starting_runs


def finished_run(folder: Path, base: str = "base-model", method: str = "lora", adapter: str | None = None,
                 weights: bool = True) -> Path:
    data = folder.parent / "rows.json"
    data.write_text(json.dumps([{"instruction": "Hi", "output": "Hello."}]), encoding="utf-8")
    config = {"model": {"name_or_path": base, **({"adapter": adapter} if adapter else {})},
              "method": {"name": method}, "data": {"path": str(data)}, "output_dir": str(folder)}
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    if weights:
        (folder / "adapter").mkdir()
        (folder / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    return folder


def test_a_chain_of_runs_is_merged_first_to_last(tmp_path: Path) -> None:
    sft = finished_run(tmp_path / "sft")
    dpo = finished_run(tmp_path / "dpo", adapter=str(sft))
    starts = starting_runs(str(dpo), "base-model")
    assert [start.run for start in starts] == [sft, dpo]
    assert starts[0].record() == {"run": str(sft), "stage": "sft", "method": "lora", "data": "rows.json"}
    assert starting_runs(None, "base-model") == []


@pytest.mark.parametrize(("make", "bits", "sentence"), [
    (lambda p: finished_run(p, base="other-model"), None, "was trained on other-model, not on base-model: set "
                                                         "model.name_or_path to that base"),
    (lambda p: finished_run(p, weights=False), None, "holds no finished adapter (adapter/adapter_config.json)"),
    (lambda p: finished_run(p, method="prompt"), None, "trained prompt, whose virtual tokens cannot be merged"),
    (lambda p: p, None, "is no run folder (it has no config.yaml)"),
    (lambda p: finished_run(p), 4, "a 4-bit base cannot take the starting adapter merged into it"),
])  # fmt: skip
def test_a_folder_that_cannot_be_a_start_is_one_sentence(tmp_path: Path, make, bits, sentence: str) -> None:
    folder = make(tmp_path / "run")
    with pytest.raises(StartError) as caught:
        starting_runs(str(folder), "base-model", bits)
    assert sentence in str(caught.value) and str(caught.value).startswith(f"model.adapter {folder}")


def test_the_card_traces_sft_to_dpo_to_the_export(tmp_path: Path) -> None:
    sft = finished_run(tmp_path / "sft")
    config = parse_config({"model": {"name_or_path": "base-model", "adapter": str(sft)},
                           "data": {"path": str(tmp_path / "rows.json")}, "output_dir": str(tmp_path / "dpo"),
                           "train": {"stage": "dpo", "beta": 0.2}})
    metrics = {"start": [starting_runs(str(sft), "base-model")[0].record()], "steps": 5}
    lines = lineage(config, metrics)
    assert lines[0] == "- base model: `base-model`"
    assert f"- started from run `{sft}` (stage sft, method lora, data rows.json): its adapter was merged" in lines[2]
    assert lines[3].startswith("- reference: the base with the adapter of the run it started from merged")
    card = model_card(config, metrics, Verification(dtype="float32"), merged=True, reason=None, name="x",
                      source="dpo")
    assert "## Lineage" in card and "| beta | 0.2 |" in card and "| stage | dpo |" in card
    orpo = config.model_copy(update={"train": config.train.model_copy(update={"stage": "orpo"})})
    assert lineage(orpo, {})[-1].startswith("- reference: none (reference-free")
    assert "this run's adapter disabled" in lines[3]
    full = config.model_copy(update={"method": config.method.model_copy(update={"name": "full"})})
    assert "a frozen copy of it kept beside the trained weights" in lineage(full, metrics)[3]  # no adapter to disable
