"""The one reader of a model's config.json (engine.model.config_json): from a folder, or from the hub cache's
snapshot that a revision (main by default) points to, never a download; and the web process's use of it
(webui.forms.models), which takes a name as a folder only once the path boundary has let it in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.model import config_json
from engine.model.imports import uses_bitsandbytes
from webui.forms import models

LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 128}
MAIN, OLDER = "a" * 40, "b" * 40


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub cache holding `org/tiny` at two commits, main pointing at MAIN; the older one is written last."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / "models--org--tiny"
    for commit, layers in ((MAIN, 2), (OLDER, 3)):
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text(json.dumps({**LLAMA, "num_hidden_layers": layers}), encoding="utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN, encoding="utf-8")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_folder_config_is_read_and_a_bad_one_is_one_sentence(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA), encoding="utf-8")
    assert config_json.read(tmp_path) == LLAMA
    assert config_json.model_config_json(str(tmp_path)) == LLAMA
    for text in ("{not json", "[1, 2]"):  # issue 24 item 12: a damaged one is said, not taken for a missing one
        (tmp_path / "config.json").write_text(text, encoding="utf-8")
        with pytest.raises(config_json.ModelFileError, match=f"{tmp_path.name}/config.json"):
            config_json.read(tmp_path)
    assert config_json.read(tmp_path / "missing") is None
    assert config_json.model_config_json(str(tmp_path / "missing")) is None  # neither a folder nor a hub id


def test_a_hub_id_is_read_from_the_snapshot_its_revision_points_to(hub_cache: Path):
    assert config_json.model_config_json("org/tiny")["num_hidden_layers"] == 2  # main, not the newest file
    assert config_json.model_config_json("org/tiny", OLDER)["num_hidden_layers"] == 3
    assert config_json.cached_folder("org/tiny") == hub_cache / "models--org--tiny" / "snapshots" / MAIN
    assert config_json.model_config_json("org/not-cached") is None


def test_the_web_process_reads_the_same_file(hub_cache: Path):
    assert models.model_config_json("org/tiny", None) == config_json.model_config_json("org/tiny")
    assert models.model_folder("org/tiny", None) == hub_cache / "models--org--tiny" / "snapshots" / MAIN
    info = models.model_info("org/tiny", None)
    assert (info.architecture, info.params_estimated) == ("LlamaForCausalLM", True) and info.params > 0


def test_the_web_process_takes_a_name_as_a_folder_only_through_the_boundary(tmp_path: Path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA), encoding="utf-8")
    assert models.model_folder(str(folder), None) is None  # a name the path boundary did not check
    assert models.model_folder(str(folder), folder) == folder
    assert models.model_config_json(str(folder), folder) == LLAMA


def test_the_engine_decides_bitsandbytes_from_the_same_file(tmp_path: Path):
    from engine.config import DataConfig, ModelConfig, RunConfig

    (tmp_path / "config.json").write_text(json.dumps(LLAMA), encoding="utf-8")
    run = RunConfig(model=ModelConfig(name_or_path=str(tmp_path)), data=DataConfig(path="unused"), output_dir="x")
    assert not uses_bitsandbytes(run)
    quantized = {**LLAMA, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}
    (tmp_path / "config.json").write_text(json.dumps(quantized), encoding="utf-8")
    assert uses_bitsandbytes(run)


@pytest.mark.parametrize(("method", "bits"), [("lora", 8), ("lora", 4), ("dora", 4), ("dora", 8)])
def test_a_quantized_lora_or_dora_run_keeps_bitsandbytes(tmp_path: Path, method: str, bits: int):
    """The Train tab's bits radio offers 8- and 4-bit to LoRA and DoRA too (not only QLoRA): a training process
    that marked bitsandbytes absent for them failed to load the base with transformers' ImportError."""
    from engine.config import DataConfig, MethodConfig, ModelConfig, RunConfig

    (tmp_path / "config.json").write_text(json.dumps(LLAMA), encoding="utf-8")
    run = RunConfig(model=ModelConfig(name_or_path=str(tmp_path)), method=MethodConfig(name=method, bits=bits),
                    data=DataConfig(path="unused"), output_dir="x")
    assert uses_bitsandbytes(run)
    assert not uses_bitsandbytes(run.model_copy(update={"method": MethodConfig(name=method)}))


def test_a_model_folder_without_a_tokenizer_says_so_at_once_and_start_refuses_it(tmp_path: Path):
    """A folder with config.json and weights but no tokenizer files (copied without them): the model line said
    "chat template: none: the ChatML fallback is used", and Start blamed the dataset ("qa.csv cannot be trained.
    Cannot load a tokenizer ...: check --model", a command-line flag) after an engine process had run."""
    from engine.config import RunConfig
    from webui.forms.prestart import StartRefusedError, check_start

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA), encoding="utf-8")
    shown = models.model_info(str(folder), folder).markdown(lambda key, **values: f"{key} {values}")
    assert "msg.model_no_tokenizer" in shown and str(folder) in shown
    config = RunConfig.model_validate({"model": {"name_or_path": str(folder)}, "data": {"path": "unused.jsonl"},
                                       "output_dir": str(tmp_path / "run")})
    with pytest.raises(StartRefusedError) as refused:
        check_start(config, None, folder)  # refused before any dataset is inspected (no cache needed)
    assert refused.value.key == "msg.model_no_tokenizer" and refused.value.values == {"name": str(folder)}
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    assert models.model_info(str(folder), folder).tokenizer is True


def test_the_base_model_list_offers_the_workspaces_merged_exports(tmp_path: Path):
    """An export's merged folder is a model to train on next: the list offered the bundled, recent and
    WORKSPACE/models folders only, so it had to be typed (and an export that is not merged, no config.json, is not
    a model)."""
    workspace, assets = tmp_path / "ws", tmp_path / "assets"
    merged = workspace / "exports" / "run-float16" / "model"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text(json.dumps(LLAMA), encoding="utf-8")
    (workspace / "exports" / "prefix-adapter" / "model").mkdir(parents=True)  # an adapter: adapter_config.json
    assert models.model_choices(workspace, assets) == [str(merged)]
