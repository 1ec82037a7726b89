"""Which model each entry of an evaluation's `models` is (engine/eval/models.py), read from small files only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config_eval import EvalConfig
from engine.eval.models import EvalModelError, plan_models


def run_folder(path: Path, weights: str) -> Path:
    (path / weights).mkdir(parents=True)
    config = {"model": {"name_or_path": "org/base"}, "method": {"name": "lora" if weights == "adapter" else "full"},
              "data": {"path": "d.json"}, "output_dir": str(path)}
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    name = "adapter_config.json" if weights == "adapter" else "config.json"
    (path / weights / name).write_text(json.dumps({"base_model_name_or_path": "org/base"}), encoding="utf-8")
    return path


def test_runs_exports_and_model_folders_are_told_apart(tmp_path: Path) -> None:
    lora, full = run_folder(tmp_path / "lora", "adapter"), run_folder(tmp_path / "full", "model")
    export = tmp_path / "exports" / "merged"
    (export / "model").mkdir(parents=True)
    (export / "model" / "config.json").write_text("{}", encoding="utf-8")
    (export / "config.yaml").write_text(yaml.safe_dump({"run_dir": str(lora)}), encoding="utf-8")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}", encoding="utf-8")
    models = ["base", str(lora), str(full), str(export), str(plain), str(lora / "adapter")]
    plan = plan_models(EvalConfig(models=models, data={"path": "t.json"}))
    assert [(e.name, e.kind) for e in plan.entries] == [
        ("base", "base"), ("lora", "adapter"), ("full", "model"), ("merged", "model"), ("plain", "model"),
        ("lora-2", "adapter")]
    assert plan.entries[3].path == str(export / "model")
    assert plan.load.model == "org/base" and [s.kind for s in plan.load.sources] == ["adapter", "adapter"]


def test_standalone_models_alone_load_no_base_and_a_missing_one_is_a_sentence(tmp_path: Path) -> None:
    full = run_folder(tmp_path / "full", "model")
    assert plan_models(EvalConfig(models=[str(full)], data={"path": "t.json"})).load is None
    with pytest.raises(EvalModelError, match="does not exist: give a run folder"):
        plan_models(EvalConfig(models=[str(tmp_path / "nope")], data={"path": "t.json"}))


def started_run(path: Path, start: Path) -> Path:
    """A LoRA run trained from the finished run `start` (model.adapter: DPO after SFT)."""
    run_folder(path, "adapter")
    config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    config["model"]["adapter"] = str(start)
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_a_run_started_from_another_run_answers_from_its_own_group_and_base_stays_plain(tmp_path: Path) -> None:
    """newuser5: base, an SFT run and the DPO run trained from it, in one evaluation, failed ("start from
    different models"); base beside the DPO run alone answered as the merged SFT model (its loss was the SFT run's)."""
    sft = run_folder(tmp_path / "sft", "adapter")
    dpo = started_run(tmp_path / "dpo", sft)
    plan = plan_models(EvalConfig(models=["base", str(sft), str(dpo)], data={"path": "t.json"}))
    assert [(e.name, e.kind, e.group) for e in plan.entries] == [
        ("base", "base", None), ("sft", "adapter", None), ("dpo", "adapter", str(sft))]
    assert plan.load.start is None and [s.name for s in plan.load.sources] == ["sft"]
    assert list(plan.groups) == [str(sft)] and plan.groups[str(sft)].start == str(sft)
    assert [s.name for s in plan.groups[str(sft)].sources] == ["dpo"]

    alone = plan_models(EvalConfig(models=["base", str(dpo)], data={"path": "t.json"}))
    assert alone.load.model == "org/base" and alone.load.start is None and not alone.load.sources


def test_each_entry_answers_from_its_group_loaded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types
    from contextlib import contextmanager

    from engine.eval import models

    loaded, scopes = [], []

    class Session:  # what LoadedModels asks of the chat's ChatSession
        def __init__(self):
            self.model, self.tokenizer, self.tokenizers = None, "tokenizer", {}

        def execute(self, plan) -> None:
            loaded.append(plan.start)
            self.model = f"base+{plan.start}"

        @contextmanager
        def adapter_scope(self, adapter, model):
            scopes.append((adapter, model))
            yield

    # the chat's session and the model loader stand in for themselves without torch (their imports take seconds)
    monkeypatch.setitem(sys.modules, "engine.chat.session", types.SimpleNamespace(ChatSession=Session))
    monkeypatch.setitem(sys.modules, "engine.model.loading", types.SimpleNamespace(ModelError=RuntimeError))
    monkeypatch.setattr(models, "_free", lambda: None)  # gc and torch's cache: no weights here
    sft = run_folder(tmp_path / "sft", "adapter")
    dpo, orpo = started_run(tmp_path / "dpo", sft), started_run(tmp_path / "orpo", sft)
    plan = plan_models(EvalConfig(models=["base", str(dpo), str(sft), str(orpo)], data={"path": "t.json"}))
    logged: list[str] = []
    answering = models.LoadedModels(plan, logged.append)
    for entry in plan.entries:
        with answering.use(entry) as (model, _):
            assert model == (f"base+{sft}" if entry.group else "base+None"), entry
    assert loaded == [None, str(sft)]  # the plain base first; the SFT run's group once, for both its runs
    assert [adapter for adapter, _ in scopes] == [None, "dpo", "sft", "orpo"]
    assert sum(f"with {sft} merged" in line for line in logged) == 1, logged


def adapter_run(path: Path, method: str, peft_type: str, base: str = "org/base", bits: int | None = None) -> Path:
    """A finished run of an adapter method whose adapter_config.json names its peft kind, as peft writes it."""
    run_folder(path, "adapter")
    config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    config["model"]["name_or_path"] = base
    config["method"] = {"name": method, **({"bits": bits} if bits else {})}
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (path / "adapter" / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": base, "peft_type": peft_type}), encoding="utf-8")
    return path


def test_adapters_that_cannot_share_one_base_are_loads_of_their_own(tmp_path: Path) -> None:
    """newuser2: a LoRA run and an IA3 run in one evaluation loaded both into one PeftModel, and the evaluation
    failed with the chat's "different kinds (IA3, LORA)" sentence. Each peft kind, and each quantization, is now a
    group loaded in turn; base and the first group share the plain base."""
    lora = adapter_run(tmp_path / "lora", "lora", "LORA")
    ia3 = adapter_run(tmp_path / "ia3", "ia3", "IA3")
    dora = adapter_run(tmp_path / "dora", "dora", "LORA")
    prefix = adapter_run(tmp_path / "prefix", "prefix", "PREFIX_TUNING")
    qlora = adapter_run(tmp_path / "qlora", "qlora", "LORA", bits=4)
    models = ["base", str(lora), str(ia3), str(prefix), str(dora), str(qlora)]
    plan = plan_models(EvalConfig(models=models, data={"path": "t.json"}))
    assert [s.name for s in plan.load.sources] == ["lora", "dora"] and plan.load.bits is None
    assert list(plan.groups) == ["IA3", "PREFIX_TUNING", "LORA 4-bit"]
    assert [s.name for s in plan.groups["IA3"].sources] == ["ia3"] and plan.groups["LORA 4-bit"].bits == 4
    assert [(e.name, e.group) for e in plan.entries] == [
        ("base", None), ("lora", None), ("ia3", "IA3"), ("prefix", "PREFIX_TUNING"), ("dora", None),
        ("qlora", "LORA 4-bit")]
    assert [e.name for e in plan.in_load_order()] == ["base", "lora", "dora", "ia3", "prefix", "qlora"]


def test_runs_of_different_bases_load_apart_and_base_then_needs_naming(tmp_path: Path) -> None:
    one = adapter_run(tmp_path / "one", "lora", "LORA", base="org/one")
    two = adapter_run(tmp_path / "two", "lora", "LORA", base="org/two")
    plan = plan_models(EvalConfig(models=[str(one), str(two)], data={"path": "t.json"}))
    assert plan.load.model == "org/one" and [g.model for g in plan.groups.values()] == ["org/two"]
    with pytest.raises(EvalModelError, match=r"different base models \(org/one, org/two\), so 'base' names none"):
        plan_models(EvalConfig(models=["base", str(one), str(two)], data={"path": "t.json"}))
    named = plan_models(EvalConfig(models=["base", str(one), str(two)], base="org/one", data={"path": "t.json"}))
    assert named.load.model == "org/one" and not named.groups  # base given: every adapter over it


def test_each_kind_is_loaded_once_when_the_models_alternate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from engine.eval import models

    loaded: list[list[str]] = []

    class Session:
        def __init__(self):
            self.model, self.tokenizer, self.tokenizers = None, "tokenizer", {}

        def execute(self, plan) -> None:
            loaded.append([s.name for s in plan.sources])
            self.model = "+".join(s.name for s in plan.sources)

        def adapter_scope(self, _adapter, _model):
            from contextlib import nullcontext
            return nullcontext()

    monkeypatch.setitem(sys.modules, "engine.chat.session", types.SimpleNamespace(ChatSession=Session))
    monkeypatch.setitem(sys.modules, "engine.model.loading", types.SimpleNamespace(ModelError=RuntimeError))
    monkeypatch.setattr(models, "_free", lambda: None)
    runs = [adapter_run(tmp_path / name, method, kind) for name, method, kind in (
        ("lora", "lora", "LORA"), ("ia3", "ia3", "IA3"), ("prompt", "prompt", "PROMPT_TUNING"),
        ("ia3b", "ia3", "IA3"), ("lorab", "lora", "LORA"))]
    plan = plan_models(EvalConfig(models=["base", *map(str, runs)], data={"path": "t.json"}))
    logged: list[str] = []
    answering = models.LoadedModels(plan, logged.append)
    for entry in plan.in_load_order():
        with answering.use(entry) as (model, _):
            assert entry.name == "base" or entry.name in model.split("+"), (entry, model)
    assert loaded == [["lora", "lorab"], ["ia3", "ia3b"], ["prompt"]]
    assert sum("of another kind (IA3)" in line for line in logged) == 1, logged
