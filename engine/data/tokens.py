"""The tokenizer pieces that training, chat and export share: one place each.

- `ensure_pad_token`: pad with eos (else unk) where the tokenizer has none.
- `ensure_chat_template`: a ChatML template where the tokenizer has none, never growing the vocabulary.
- `end_of_turn_ids`: the token ids that end an assistant turn (eos plus the template's own marker).
- `chat_spans`: a conversation rendered with the chat template, and the character spans of the replies to
  train on (engine/data/masking.py), with a problem turned into a DataError naming the row and turn.
"""

from __future__ import annotations

from typing import Any

import jinja2

from engine.data.masking import MaskingError, render_with_spans
from engine.jobs.failures import DataError

Messages = list[dict[str, Any]]
Span = tuple[int, int]

SPECIAL_CHATML = ("<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# For tokenizers without the ChatML tokens: the same layout with the markers as plain text and the
# tokenizer's own eos ending each turn. Adding <|im_start|>/<|im_end|> as new tokens would leave their
# embedding and output rows untrained (LoRA does not train them), so the model would not learn to stop,
# and the adapter would need the grown embeddings saved beside it.
CHATML_EOS_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def ensure_chat_template(tokenizer: Any) -> bool:
    """Install a ChatML template where the tokenizer has none; True when it did. The vocabulary never grows:
    where <|im_start|>/<|im_end|> are not tokens already, turns end with the tokenizer's eos instead."""
    if tokenizer.chat_template:
        return False
    vocab = tokenizer.get_vocab()
    if all(token in vocab for token in SPECIAL_CHATML):
        tokenizer.chat_template = CHATML_TEMPLATE
    elif tokenizer.eos_token is not None:
        tokenizer.chat_template = CHATML_EOS_TEMPLATE
    else:
        raise DataError("The tokenizer has no chat template, no ChatML tokens and no eos token: "
                        "pick a model with a chat template.")
    return True


def ensure_pad_token(tokenizer: Any) -> None:
    """Pad with eos (else unk) where the tokenizer has no pad token; labels of padding are masked anyway."""
    if tokenizer.pad_token is not None:
        return
    fallback = tokenizer.eos_token or tokenizer.unk_token
    if fallback is None:
        raise ValueError("The tokenizer has no pad, eos or unk token: set tokenizer.pad_token before training.")
    tokenizer.pad_token = fallback


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: eos, plus the special token the chat template puts after a
    reply (<|im_end|> for ChatML, <|eot_id|> for Llama 3, <end_of_turn> for Gemma ...)."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    marker = "\u2603MARKER\u2603"
    text = _one_exchange(tokenizer, marker)
    if text is None:  # a template that cannot render two turns has no end-of-turn to find
        return ids
    after = text.split(marker, 1)[-1].strip() if marker in text else ""
    if after:
        first = tokenizer(after, add_special_tokens=False)["input_ids"][:1]
        special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        if first and first[0] in special and first[0] not in ids:
            ids.append(first[0])
    return ids


def _one_exchange(tokenizer: Any, reply: str) -> str | None:
    """A user turn and `reply` through the chat template; a tool-use template (Hermes-3's) that fails without a
    tools list gets an empty one. None where the template cannot render them."""
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": reply}]
    for tools in (None, []):
        try:
            return tokenizer.apply_chat_template(conversation, tools=tools, tokenize=False)
        except (jinja2.TemplateError, TypeError):  # TypeError: a template iterating over tools=None
            continue
    return None


def chat_spans(
    messages: Messages, tokenizer: Any, source: str, number: int, tools: list[dict] | None = None
) -> tuple[str, list[Span]]:
    """render_with_spans (engine/data/masking.py), with a problem turned into a DataError naming the row and turn."""
    try:
        return render_with_spans(messages, tokenizer, tools)
    except MaskingError as error:
        turn = f", turn {error.turn}" if error.turn is not None else ""
        raise DataError(f"{source} row {number}{turn}: {error.problem}") from None
