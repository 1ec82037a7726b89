"""Method name -> how to make a base model trainable: a table, not an if-chain.

Each builder takes the loaded base model and the run's MethodConfig and returns the model to train
(a PeftModel for adapter methods, the base itself for `full` and `freeze`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from peft import (
    IA3Config,
    LoraConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptEncoderReparameterizationType,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
    get_peft_model,
    prepare_model_for_kbit_training,
)
from transformers import PreTrainedModel

from engine.config import ConfigError, MethodConfig, RunConfig

Builder = Callable[[PreTrainedModel, MethodConfig, object], torch.nn.Module]


def _lora(model: PreTrainedModel, m: MethodConfig, _tokenizer: object) -> PeftModel:
    if m.effective_bits:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=m.r,
        lora_alpha=m.lora_alpha,
        lora_dropout=m.lora_dropout,
        target_modules=m.target_modules,
        use_rslora=m.use_rslora,
        use_dora=m.name == "dora",
    )
    return get_peft_model(model, config)


def _prefix(model: PreTrainedModel, m: MethodConfig, _tokenizer: object) -> PeftModel:
    config = PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=m.num_virtual_tokens,
        prefix_projection=m.prefix_projection,
        encoder_hidden_size=m.encoder_hidden_size,
    )
    return get_peft_model(model, config)


def _prompt(model: PreTrainedModel, m: MethodConfig, tokenizer: object) -> PeftModel:
    from_text = m.prompt_tuning_init == "text"
    config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=m.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if from_text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=m.prompt_tuning_init_text if from_text else None,
        tokenizer_name_or_path=getattr(tokenizer, "name_or_path", None) if from_text else None,
    )
    return get_peft_model(model, config)


def _ptuning(model: PreTrainedModel, m: MethodConfig, _tokenizer: object) -> PeftModel:
    config = PromptEncoderConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=m.num_virtual_tokens,
        encoder_reparameterization_type=PromptEncoderReparameterizationType[m.encoder_reparameterization_type],
        encoder_hidden_size=m.encoder_hidden_size,
    )
    return get_peft_model(model, config)


def _ia3(model: PreTrainedModel, m: MethodConfig, _tokenizer: object) -> PeftModel:
    # peft knows IA3's usual targets (attention k/v and the MLP's down projection) per architecture;
    # an explicit list of modules overrides them, and then every listed module is scaled on its input.
    if m.target_modules == "all-linear":
        config = IA3Config(task_type=TaskType.CAUSAL_LM)
    else:
        config = IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=m.target_modules, feedforward_modules=[])
    return get_peft_model(model, config)


def _full(model: PreTrainedModel, _m: MethodConfig, _tokenizer: object) -> PreTrainedModel:
    model.requires_grad_(True)
    return model


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The stack of decoder blocks (model.model.layers for Llama-family models)."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) and module is not model:
            return module
    raise ValueError(f"{model.__class__.__name__} has no list of decoder layers: use another method than freeze.")


def _freeze(model: PreTrainedModel, m: MethodConfig, _tokenizer: object) -> PreTrainedModel:
    layers = decoder_layers(model)
    if m.freeze_trainable_layers > len(layers):
        raise ConfigError(
            [f"method.freeze_trainable_layers is {m.freeze_trainable_layers} but the model has {len(layers)} layers."]
        )
    model.requires_grad_(False)
    for layer in layers[-m.freeze_trainable_layers :]:
        layer.requires_grad_(True)
    return model


METHODS: dict[str, Builder] = {
    "lora": _lora,
    "dora": _lora,
    "qlora": _lora,
    "prefix": _prefix,
    "prompt": _prompt,
    "ptuning": _ptuning,
    "ia3": _ia3,
    "full": _full,
    "freeze": _freeze,
}


def apply_method(model: PreTrainedModel, method: MethodConfig, tokenizer: object = None) -> torch.nn.Module:
    return METHODS[method.name](model, method, tokenizer)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; 4-bit weights count as their unpacked size, as peft counts them."""
    if isinstance(model, PeftModel):
        return model.get_nb_trainable_parameters()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def plan(config: RunConfig) -> dict[str, float]:
    """Trainable parameter count of a config, built on the meta device (no weights are read)."""
    from transformers import AutoModelForCausalLM

    from engine.model.loading import load_config

    model_config = load_config(config.model)
    method = config.method.model_copy(update={"bits": None, "name": "lora" if config.method.name == "qlora" else
                                              config.method.name, "prompt_tuning_init": "random"})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=config.model.trust_remote_code)
        model = apply_method(model, method)
    trainable, total = count_parameters(model)
    return {"trainable_params": trainable, "total_params": total, "trainable_percent": 100 * trainable / total}
