"""Build tiny real models for tests: a few-layer LlamaForCausalLM with random weights and a real
byte-level BPE tokenizer, saved with save_pretrained so they load exactly like a hub model."""

from __future__ import annotations

from pathlib import Path

CORPUS = (
    "The quick brown fox jumps over the lazy dog. Who are you? I am a helpful assistant. "
    "What can you do? I can answer questions, write text and help with code. "
    "Paris is the capital of France. Two plus two is four. The sky is blue because of Rayleigh scattering. "
    "你是谁？我是一个助手。 Hello world! Goodbye. 0123456789 ,.;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`"
)
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(
    vocab_size: int = 400,
    *,
    extra_special_tokens: tuple[str, ...] = (),
    bos_token: str | None = "<s>",
    eos_token: str = "</s>",
    corpus: str = CORPUS,
):
    """A byte-level BPE tokenizer trained on `corpus`; `extra_special_tokens` (a chat template's markers) are
    single tokens, and `bos_token`/`eos_token` may name any of them (None: no bos, like Qwen)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    special = SPECIAL_TOKENS + [token for token in extra_special_tokens if token not in SPECIAL_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + len(special) - len(SPECIAL_TOKENS),
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator([corpus] * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos_token,
        eos_token=eos_token,
        unk_token="<unk>",
        pad_token=None,  # like many base models: the engine must set one
        additional_special_tokens=special[4:],
    )


def build_tiny_llama(
    path: Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    chat_template: str | None = None,
    seed: int = 0,
    initializer_range: float = 0.02,
    tokenizer_options: dict | None = None,
) -> Path:
    """Save a random-weight Llama and its tokenizer to `path`; returns `path`. `tokenizer_options` go to
    build_tokenizer (a real template's special tokens, bos and eos)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(**(tokenizer_options or {}))
    if chat_template:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
