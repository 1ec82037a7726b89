"""The page's torch-free parameter count (engine.model.shapes) equals what `python -m engine plan` reports,
method by method, on the tiny test model, the bundled demo model and config.json files of the other
architectures it claims to know; where it cannot know, it says so (None) rather than guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import DataConfig, MethodConfig, ModelConfig, RunConfig
from engine.model import config_json
from engine.model import shapes as param_count

DEMO_MODEL = Path(__file__).resolve().parents[2] / "assets" / "models" / "workbench-demo-5m"

METHODS: dict[str, dict] = {
    "lora all-linear": {"name": "lora", "r": 8},
    "lora named": {"name": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]},
    "qlora": {"name": "qlora", "r": 16, "bits": 4},
    "dora": {"name": "dora", "r": 8},
    "dora named": {"name": "dora", "r": 2, "target_modules": ["o_proj", "down_proj"]},
    "ia3": {"name": "ia3"},
    "ia3 named": {"name": "ia3", "target_modules": ["q_proj", "up_proj"]},
    "prefix": {"name": "prefix", "num_virtual_tokens": 10},
    "prefix projection": {"name": "prefix", "num_virtual_tokens": 7, "prefix_projection": True,
                          "encoder_hidden_size": 32},
    "prompt": {"name": "prompt", "num_virtual_tokens": 12},
    "ptuning mlp": {"name": "ptuning", "num_virtual_tokens": 5, "encoder_hidden_size": 24},
    "ptuning lstm": {"name": "ptuning", "num_virtual_tokens": 5, "encoder_hidden_size": 24,
                     "encoder_reparameterization_type": "LSTM"},
    "full": {"name": "full"},
    "freeze": {"name": "freeze", "freeze_trainable_layers": 1},
}

# config.json as a hub model ships it, for architectures the tiny models do not cover; some keys are left
# out on purpose, so the class defaults (Mistral's 8 key/value heads, Qwen3's head_dim 128) are exercised.
CONFIGS: dict[str, dict] = {
    "mistral-gqa": {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 64,
                    "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 8, "vocab_size": 300},
    "qwen2-tied": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64,
                   "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "vocab_size": 320, "tie_word_embeddings": True},
    "qwen3": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 64,
              "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "vocab_size": 256},
    "llama-biases": {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 48,
                     "intermediate_size": 72, "num_hidden_layers": 2, "num_attention_heads": 6,
                     "num_key_value_heads": 3, "head_dim": 16, "vocab_size": 200, "attention_bias": True,
                     "mlp_bias": True},
}


@pytest.fixture(scope="module")
def models(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {"tiny-llama": tiny_model, "demo": DEMO_MODEL}
    for name, config in CONFIGS.items():
        folder = tmp_path_factory.mktemp(name)
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
        folders[name] = folder
    return folders


def engine_plan(model: Path, method: MethodConfig) -> dict:
    from engine.model.methods import plan

    config = RunConfig(model=ModelConfig(name_or_path=str(model)), method=method, data=DataConfig(path="unused"),
                       output_dir="unused")
    return plan(config)


def shape_count(model: Path, method: MethodConfig) -> dict | None:
    return param_count.count(config_json.read(model), method)


@pytest.mark.parametrize("model_name", ["tiny-llama", "demo", *CONFIGS])
def test_shape_count_equals_engine_plan(models, model_name):
    for label, options in METHODS.items():
        method = MethodConfig(**options)
        counted = shape_count(models[model_name], method)
        assert counted is not None, f"{model_name}/{label}: the shapes were not counted"
        planned = engine_plan(models[model_name], method)
        assert counted["trainable_params"] == planned["trainable_params"], f"{model_name}/{label}"
        assert counted["total_params"] == planned["total_params"], f"{model_name}/{label}"
        assert counted["trainable_percent"] == pytest.approx(planned["trainable_percent"])


def test_equals_the_plan_command(tmp_path, capsys):
    """`python -m engine plan CONFIG.yaml` on the demo model (its main(), in this process) prints the same."""
    from engine.cli.plan import main

    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{name_or_path: {DEMO_MODEL}}}\nmethod: {{name: dora, r: 4}}\n"
                      f"data: {{path: {data}}}\noutput_dir: {tmp_path / 'run'}\n")
    assert main([str(config)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert shape_count(DEMO_MODEL, MethodConfig(name="dora", r=4)) == printed


@pytest.mark.parametrize("config, method", [
    ({**CONFIGS["qwen3"], "model_type": "gpt2"}, {"name": "lora"}),  # an architecture it does not know
    ({**CONFIGS["qwen3"], "auto_map": {"AutoModelForCausalLM": "x.Model"}}, {"name": "lora"}),  # custom code
    (CONFIGS["qwen3"], {"name": "lora", "target_modules": "layers\\.0\\..*proj"}),  # a regex
    (CONFIGS["qwen3"], {"name": "lora", "target_modules": ["q_proj", "lm_head"]}),  # not a layer's Linear
    (CONFIGS["qwen3"], {"name": "freeze", "freeze_trainable_layers": 3}),  # deeper than the model: plan says why
    ({k: v for k, v in CONFIGS["qwen3"].items() if k != "hidden_size"}, {"name": "full"}),
])
def test_unknown_shapes_are_not_guessed(config, method):
    assert param_count.count(config, MethodConfig(**method)) is None


@pytest.mark.parametrize("model_name", ["tiny-llama", "demo", *CONFIGS])
def test_the_base_size_is_exact_where_the_shapes_are_known(models, model_name):
    """The model summary's size (no weights at hand) is the base model `plan` builds: its full fine-tune total."""
    full = engine_plan(models[model_name], MethodConfig(name="full"))
    assert param_count.estimate_total(config_json.read(models[model_name])) == full["total_params"]


def test_the_base_size_of_another_architecture_is_estimated():
    config = {"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100,
              "intermediate_size": 256, "num_attention_heads": 4}
    # embeddings and head 2 x 100 x 64; a layer: attention 4 x 64 x 64, MLP 3 x 64 x 256, two norms; a final norm
    assert param_count.estimate_total(config) == 2 * 100 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 256 + 2 * 64) + 64
    assert param_count.estimate_total({"model_type": "gpt_neox"}) is None
