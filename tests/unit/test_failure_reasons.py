"""The product's sentence, never a library's raw message (issue 11, defect 7): torch's CPU allocator failure,
a killed export whose log ends in an unrelated warning, a pickle-only model, a model that ships its own code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.config import ModelConfig
from engine.jobs.failures import explain, explain_exit
from engine.model.loading import ModelError, load_model

CPU_ALLOCATOR = ("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 523973299600 bytes. Error code 12 (Cannot allocate memory)")
BNB_WARNING = ("/venv/lib/python3.11/site-packages/bitsandbytes/cextension.py:101: UserWarning: The installed version "
               "of bitsandbytes was compiled without GPU support. 8-bit optimizers and GPU quantization are "
               "unavailable.")


def test_cpu_out_of_memory_is_the_products_sentence():
    reason = explain(RuntimeError(CPU_ALLOCATOR))
    assert reason == ("Out of memory (RAM): one allocation asked for 488.0 GiB; lower train.batch_size or "
                      "train.cutoff_len, or use a smaller model.")
    assert explain(RuntimeError(CPU_ALLOCATOR), "export").startswith("Out of memory while merging: one allocation")
    assert explain_exit(1, f"step 1\nRuntimeError: {CPU_ALLOCATOR}") == reason  # from the log of a dead process
    assert explain(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")).startswith("Out of GPU memory")


def test_a_killed_export_is_not_blamed_on_the_last_warning_it_printed():
    for oom_killed, expected in ((None, "The engine process was killed (SIGKILL)."),
                                 (False, "killed (SIGKILL) by hand or by another program")):
        reason = explain_exit(-9, f"exporting run to out\n{BNB_WARNING}", job="export", oom_killed=oom_killed)
        assert expected in reason and "bitsandbytes" not in reason


@pytest.fixture(scope="module")
def odd_models(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("odd-models")
    pickled = root / "pickled"
    shutil.copytree(tiny_model, pickled)
    weights = {}
    for path in pickled.glob("*.safetensors"):
        weights.update(load_file(path))
        path.unlink()
    torch.save(weights, pickled / "pytorch_model.bin")

    custom = root / "custom"
    shutil.copytree(tiny_model, custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="mything", architectures=["MyThingForCausalLM"],
                  auto_map={"AutoConfig": "configuration_mything.MyThingConfig",
                            "AutoModelForCausalLM": "modeling_mything.MyThingForCausalLM"})
    (custom / "config.json").write_text(json.dumps(config))
    return {"pickled": pickled, "custom": custom}


def test_a_pickle_only_model_is_refused_with_how_to_convert(odd_models):
    with pytest.raises(ModelError) as refused:
        load_model(ModelConfig(name_or_path=str(odd_models["pickled"])))
    sentence = str(refused.value)
    assert "only pickle weights (pytorch_model.bin)" in sentence and "loads only safetensors" in sentence
    assert "save_pretrained" in sentence and "weights_only" not in sentence


def test_a_model_with_its_own_code_hints_at_trust_remote_code(odd_models):
    with pytest.raises(ModelError) as refused:
        load_model(ModelConfig(name_or_path=str(odd_models["custom"])))
    sentence = str(refused.value)
    assert "ships its own code" in sentence and "model.trust_remote_code" in sentence
    assert "https://hf.co" not in sentence
