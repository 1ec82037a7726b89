"""The head and the loss only where labels train (issue 23): the loss and every gradient equal the model's own full
computation (relative error under 1e-5 in float32) for each method family, with padding and with packing, with
Gemma-2's and Gemma-3's soft-capping, Cohere's logit scale, Granite's scaling and tied embeddings (DoRA and IA3
on Qwen2 too); no batch x length x vocabulary tensor is made;
an unknown family keeps the full computation; the pre-flight check counts one chunk of logits."""

from __future__ import annotations

import pytest
import torch
from peft import (
    IA3Config,
    LoraConfig,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
)
from transformers import (
    CohereConfig,
    CohereForCausalLM,
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    GraniteConfig,
    GraniteForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from engine.train.collate import PackingCollator, PaddingCollator
from engine.train.logits import MIN_CHUNK, chunk_len, plan, trained_loss
from engine.train.preflight import GIB, MemoryCheckError, check_fits, estimate

VOCAB = 300
CHUNK = 7  # positions per chunk in these tests: several chunks and a ragged last one
SHAPE = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2)
CAUSAL = TaskType.CAUSAL_LM


def llama(tied: bool = False) -> torch.nn.Module:
    return LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=tied))


def llama_tied() -> torch.nn.Module:
    return llama(tied=True)


def gemma2() -> torch.nn.Module:  # soft-capping at 3: the tiny model's logits reach it
    return Gemma2ForCausalLM(Gemma2Config(**SHAPE, head_dim=8, final_logit_softcapping=3.0, sliding_window=8,
                                          initializer_range=0.5, tie_word_embeddings=True))


def gemma3() -> torch.nn.Module:  # Gemma-3's final soft-capping, as Gemma-2's, at 3
    return Gemma3ForCausalLM(Gemma3TextConfig(**SHAPE, head_dim=8, final_logit_softcapping=3.0, sliding_window=8,
                                              initializer_range=0.5, tie_word_embeddings=True))


def granite() -> torch.nn.Module:  # logits divided by 0.25: four times larger, so the scaling shows in the loss
    return GraniteForCausalLM(GraniteConfig(**SHAPE, logits_scaling=0.25, initializer_range=0.2))


def cohere() -> torch.nn.Module:
    return CohereForCausalLM(CohereConfig(**SHAPE, logit_scale=0.5, tie_word_embeddings=True))


def qwen2() -> torch.nn.Module:
    return Qwen2ForCausalLM(Qwen2Config(**SHAPE, tie_word_embeddings=True))


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    for name, parameter in model.named_parameters():
        parameter.requires_grad = "layers.1." in name or "lm_head" in name
    return model


METHODS = {
    "full": lambda m: m,
    "freeze": freeze,
    "lora": lambda m: get_peft_model(m, LoraConfig(task_type=CAUSAL, r=4, target_modules="all-linear")),
    # B drawn at random (not zero), so that the head's LoRA changes the loss; no dropout: on the head it draws
    # its masks over the trained positions only, another draw than the full path's (the same distribution)
    "lora-lm_head": lambda m: get_peft_model(m, LoraConfig(task_type=CAUSAL, r=4, init_lora_weights=False,
                                                           target_modules=["q_proj", "lm_head"])),
    "dora": lambda m: get_peft_model(m, LoraConfig(task_type=CAUSAL, r=4, use_dora=True, target_modules="all-linear")),
    "ia3": lambda m: get_peft_model(m, IA3Config(task_type=CAUSAL)),
    "prefix": lambda m: get_peft_model(m, PrefixTuningConfig(task_type=CAUSAL, num_virtual_tokens=3)),
    "prompt": lambda m: get_peft_model(m, PromptTuningConfig(task_type=CAUSAL, num_virtual_tokens=3)),
    "ptuning": lambda m: get_peft_model(m, PromptEncoderConfig(task_type=CAUSAL, num_virtual_tokens=3,
                                                               encoder_hidden_size=16)),
}


def rows(count: int = 4, prompt_trains: bool = False) -> list[dict]:
    """Rows of different lengths, the first few tokens unlabelled like a chat prompt (or all labelled)."""
    generator = torch.Generator().manual_seed(3)
    out = []
    for n in (19, 11, 25, 7)[:count]:
        ids = torch.randint(0, VOCAB, (n,), generator=generator).tolist()
        out.append({"input_ids": ids, "labels": ids if prompt_trains else [-100] * 4 + ids[4:]})
    return out


def batch(packing: bool, prompt_trains: bool = False) -> dict:
    collate = PackingCollator(0, 40) if packing else PaddingCollator(0)
    inputs = collate(rows(prompt_trains=prompt_trains))
    return {k: v for k, v in inputs.items() if k != "real_tokens"}


def both(build, method: str, inputs: dict, num_items=None) -> tuple:
    """(full loss, new loss, the largest relative gradient difference over trainable parameters)."""
    torch.manual_seed(0)
    model = METHODS[method](build()).train()
    head, _line = plan(model, chunk=CHUNK)
    assert head is not None
    extra = {"num_items_in_batch": num_items} if num_items is not None else {}
    torch.manual_seed(1)
    full = model(**inputs, **extra).loss
    full.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    torch.manual_seed(1)  # the same dropout masks
    new = trained_loss(model, head, inputs, num_items)
    new.backward()
    worst = max(float((p.grad - reference[n]).abs().max() / reference[n].abs().max().clamp_min(1e-12))
                for n, p in model.named_parameters() if p.requires_grad)
    return float(full.detach()), float(new.detach()), worst


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(a)


PROMPT_LEARNING = ("prefix", "prompt", "ptuning")  # never packed (plan_batching): padding only
CASES = [(method, packing) for method in sorted(METHODS) for packing in (False, True)
         if not (packing and method in PROMPT_LEARNING)]


@pytest.mark.parametrize(("method", "packing"), CASES, ids=[f"{m}-{'packing' if p else 'padding'}" for m, p in CASES])
def test_every_method_equals_the_full_loss_and_gradients(method, packing):
    full, new, worst = both(llama, method, batch(packing))
    assert relative(full, new) < 1e-5 and worst < 1e-5


FAMILY_CASES = [(gemma2, "lora"), (gemma2, "full"), (cohere, "lora"), (qwen2, "full"), (llama_tied, "lora-lm_head"),
                (gemma3, "lora"), (granite, "lora"), (granite, "lora-lm_head"), (qwen2, "dora"), (qwen2, "ia3")]


@pytest.mark.parametrize(("build", "method"), FAMILY_CASES, ids=[f"{b.__name__}-{m}" for b, m in FAMILY_CASES])
def test_family_post_processing_and_tied_embeddings(build, method):
    full, new, worst = both(build, method, batch(packing=False))
    assert relative(full, new) < 1e-5 and worst < 1e-5


@pytest.mark.parametrize(("build", "setting", "off"), [(gemma2, "final_logit_softcapping", None),
                                                      (gemma3, "final_logit_softcapping", None),
                                                      (granite, "logits_scaling", 1.0)])
def test_the_familys_logit_step_is_applied_not_skipped(build, setting, off):
    """A loss without the family's step (soft-capping, scaling) would differ: the checks above can tell them apart."""
    model = build()
    inputs = batch(packing=False)
    head, _ = plan(model, chunk=CHUNK)
    kept = float(trained_loss(model, head, inputs))
    setattr(model.config, setting, off)
    assert relative(kept, float(model(**inputs).loss)) > 1e-3


@pytest.mark.parametrize("method", ["prompt", "ptuning", "lora"])
def test_virtual_tokens_and_a_trained_first_token_align_with_peft(method):
    """Continued pretraining labels every token: with prompt tuning the last virtual token predicts the first."""
    full, new, worst = both(llama, method, batch(packing=False, prompt_trains=True))
    assert relative(full, new) < 1e-5 and worst < 1e-5


def test_the_trainers_token_count_divides_the_sum():
    inputs = batch(packing=True)
    full, new, worst = both(llama, "lora", inputs, num_items=torch.tensor(123))
    assert relative(full, new) < 1e-5 and worst < 1e-5


def test_no_batch_by_length_by_vocabulary_tensor_is_made():
    model = METHODS["lora"](llama())
    shapes = []
    model.get_base_model().lm_head.register_forward_hook(lambda _m, _a, out: shapes.append(tuple(out.shape)))
    inputs = batch(packing=False)
    head, _ = plan(model, chunk=CHUNK)
    trained_loss(model, head, inputs).backward()
    trained = int((inputs["labels"][:, 1:] != -100).sum())
    assert shapes[0] == (4, 1, VOCAB)  # the model's own head: one position (logits_to_keep=1)
    chunks = shapes[1:]  # each chunk once: its gradients are taken in the same pass, nothing is recomputed
    assert max(s[0] for s in chunks) == CHUNK and sum(s[0] for s in chunks) == trained


def test_an_unknown_family_keeps_the_full_computation_and_says_so():
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=1, n_head=2))
    head, line = plan(model)
    assert head is None and "'gpt2'" in line and "full logits" in line
    known, line = plan(llama())
    assert known is not None and "only the positions whose next token trains" in line


def test_chunks_are_sized_like_liger_with_a_floor():
    assert chunk_len(4096, 151_936, 896) == MIN_CHUNK  # 4096 / 170 parts: 25 positions, raised to the floor
    assert chunk_len(65_536, 128_256, 4096) == 2048  # 65,536 / 32 parts
    assert chunk_len(3, 300, 32) == MIN_CHUNK


def test_preflight_admits_what_only_the_full_logits_made_too_large():
    """A 150k vocabulary, 64 wide: 4 x 1,024 tokens of full logits take 4.6 GiB, one chunk 0.3 GiB."""
    config = LlamaConfig(vocab_size=150_000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    lengths = [1024] * 16
    before = estimate(model, 10_000, lengths, batch_size=4, packing=False)
    after = estimate(model, 10_000, lengths, batch_size=4, packing=False, chunked=True)
    assert before.largest()[0] == "the logits" and before.logits == 4096 * 150_000 * 8
    assert after.logits == MIN_CHUNK * 150_000 * 8
    with pytest.raises(MemoryCheckError, match="the logits of the largest batch alone"):
        check_fits(before, 2 * GIB, "RAM", batch_size=4, cutoff_len=1024, packing=False)
    assert check_fits(after, 2 * GIB, "RAM", batch_size=4, cutoff_len=1024, packing=False).startswith("memory estimate")
