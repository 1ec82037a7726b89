"""train.kernels (engine/config_kernels.py, engine/train/kernels.py): which path a run's loss takes. No CUDA here:
only torch.cuda.is_available is replaced; Liger Kernel's family table, where a test needs it importable, is given
to `select` as liger-kernel 0.8.5 lists those types (its MODEL_TYPE_TO_APPLY_LIGER_FN)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import GraniteConfig, GraniteForCausalLM, LlamaConfig, LlamaForCausalLM, TrainingArguments

from engine.config import ConfigError, RunConfig
from engine.config_kernels import kernel_problems
from engine.jobs.rundir import RunDir
from engine.train import kernels
from engine.train.kernels import KernelsError, choose, select
from engine.train.logits import plan, trained_loss
from engine.train.trainer import WorkbenchTrainer

SHAPE = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
             num_key_value_heads=1)
LIGER_TYPES = frozenset({"llama", "qwen2", "gemma2", "gemma3_text", "granite", "mistral"})  # a part of Liger's
INSTALLED = find_spec("liger_kernel") is not None


def config(tmp_path: Path, **train) -> RunConfig:
    return RunConfig(model={"name_or_path": "m"}, data={"path": "d.json"}, output_dir=str(tmp_path / "run"),
                     train=train)


def lora(model: torch.nn.Module, targets: list[str] | str = "all-linear") -> torch.nn.Module:
    return get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, target_modules=targets))


@pytest.fixture
def cuda(monkeypatch):
    """CUDA said to be present (the one thing replaced)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_the_setting_defaults_to_auto_and_liger_is_checked_without_torch(tmp_path):
    assert config(tmp_path).train.kernels == "auto"
    assert kernel_problems("auto", "sft") == [] and kernel_problems("none", "dpo") == []
    dpo = kernel_problems("liger", "dpo")
    assert len(dpo) == 1 and "TRL's own loss" in dpo[0] and "auto or none" in dpo[0]
    missing = kernel_problems("liger", "sft")
    assert missing == [] if INSTALLED else "pip install -r requirements-gpu.txt" in missing[0]


@pytest.mark.usefixtures("cpu")
def test_liger_without_cuda_is_refused_before_anything_loads(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(KernelsError, match="runs on CUDA only.*set train.kernels to auto or none"):
        kernels.check(config(tmp_path, kernels="liger"), run)
    kernels.check(config(tmp_path), run)  # auto: nothing to refuse


@pytest.mark.usefixtures("cuda")
def test_liger_for_a_preference_stage_is_refused_on_cuda_too(tmp_path):
    with pytest.raises(ConfigError, match="the dpo stage does not use"):
        kernels.check(config(tmp_path, kernels="liger", stage="dpo"), RunDir(tmp_path / "run"))


@pytest.mark.usefixtures("cpu")
def test_cpu_and_none_take_the_chunked_path_with_one_line_saying_so(tmp_path):
    model = LlamaForCausalLM(LlamaConfig(**SHAPE))
    auto = choose(config(tmp_path), model)
    assert (auto.liger, auto.fused, auto.arguments()) == (False, False, {}) and "no CUDA device" in auto.line
    none = choose(config(tmp_path, kernels="none"), model)
    assert not none.liger and none.line == "kernels: none (train.kernels: none)"
    dpo = choose(config(tmp_path, stage="dpo"), model)
    assert not dpo.liger and "TRL's own loss" in dpo.line


@pytest.mark.usefixtures("cuda")
def test_on_cuda_without_the_package_auto_falls_back_and_liger_refuses(tmp_path):
    model = LlamaForCausalLM(LlamaConfig(**SHAPE))
    if INSTALLED:  # where it is installed, the table is Liger's own
        assert choose(config(tmp_path), model).liger
        return
    auto = choose(config(tmp_path), model)
    assert not auto.liger and "liger-kernel cannot be imported" in auto.line
    with pytest.raises(KernelsError, match="liger-kernel cannot be imported.*set train.kernels to auto or none"):
        choose(config(tmp_path, kernels="liger"), model)


def test_liger_takes_the_loss_only_where_its_fused_loss_is_the_models_own():
    llama = select("auto", lora(LlamaForCausalLM(LlamaConfig(**SHAPE))), LIGER_TYPES)
    assert llama.liger and llama.fused and llama.line == "kernels: Liger Kernel's for llama (train.kernels: auto)"
    assert llama.arguments() == {"use_liger_kernel": True, "liger_kernel_config": {
        "cross_entropy": False, "fused_linear_cross_entropy": True}}  # never the process-wide cross-entropy
    trained_head = select("liger", LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=True)), LIGER_TYPES)
    assert trained_head.fused  # full / freeze: the head's weight trains through Liger's fused loss
    head_lora = select("liger", lora(LlamaForCausalLM(LlamaConfig(**SHAPE)), ["q_proj", "lm_head"]), LIGER_TYPES)
    assert head_lora.liger and not head_lora.fused and "adapter" in head_lora.line
    assert head_lora.arguments()["liger_kernel_config"]["fused_linear_cross_entropy"] is False
    granite = select("auto", GraniteForCausalLM(GraniteConfig(**SHAPE, logits_scaling=4.0)), LIGER_TYPES)
    assert granite.liger and not granite.fused and "post-processes its logits" in granite.line


def test_a_family_liger_does_not_know_falls_back_under_auto_and_is_refused_under_liger():
    model = lora(LlamaForCausalLM(LlamaConfig(**SHAPE)))
    auto = select("auto", model, frozenset({"qwen2"}))
    assert not auto.liger and "no kernels for the model type 'llama'" in auto.line
    with pytest.raises(KernelsError, match="no kernels for the model type 'llama'"):
        select("liger", model, frozenset({"qwen2"}))


def test_the_chunked_loss_ignores_the_trainers_skip_logits(tmp_path):
    """Under use_liger_kernel the Trainer's evaluation adds skip_logits to the inputs (Liger's forward reads it): on
    the chunked path (Liger's kernels without its fused loss) compute_loss still takes the model's own loss."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPE))
    trainer = WorkbenchTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True,
                                                                   report_to=[]))
    trainer.head = plan(model)[0]
    ids = torch.randint(0, SHAPE["vocab_size"], (2, 9))
    inputs = {"input_ids": ids, "labels": ids.clone()}
    with torch.no_grad():
        loss = trainer.compute_loss(model, {**inputs, "skip_logits": True})
        assert torch.allclose(loss, trained_loss(model, trainer.head, inputs)) and torch.allclose(
            loss, model(**inputs).loss)
