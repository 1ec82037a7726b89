"""What one model does on the test rows: its held-out loss on the trained tokens, and its answer to every row.

Loss: each row tokenized and labelled exactly as training labels it (engine.data.pipeline.tokenize_rows: only
the assistant replies' tokens, with their end-of-turn marker, are scored; cut at cutoff_len), the rows batched
with padding that is masked, and the model's own loss (the mean over a batch's scored tokens) weighted back into
a sum; `loss` is that sum over every scored token of every row divided by their number, perplexity its exp.

Answers: each row's conversation before its last reply rendered as the chat renders a prompt
(engine.data.masking.prompt_text, with its tools), batched with left padding, generated with the chat's
settings (engine.chat.session.generation_kwargs: greedy by default, stopping at the end-of-turn tokens); each
answer is cut at its first end-of-turn token, and `stopped` says whether it had one before max_new_tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.eval.metrics import Generated
from engine.eval.testset import EvalRow

Tick = Callable[[int], None]  # called after each batch with its rows: reports progress, raises on a stop request


@dataclass(frozen=True)
class Loss:
    loss: float | None  # mean negative log-likelihood per scored token; None: no row has a token to score
    perplexity: float | None
    tokens: int  # scored tokens
    rows: int  # rows with at least one scored token


@dataclass(frozen=True)
class Answer(Generated):
    raw: str = ""  # decoded with its special tokens (a call syntax may use them), the end-of-turn marker removed


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def work(rows: Sequence[EvalRow]) -> int:
    """What one model's turn ticks through: every row scored for loss, every asked row answered."""
    return len(rows) + sum(row.prompt is not None for row in rows)


def held_out_loss(model: Any, tokenizer: Any, rows: Sequence[EvalRow], cutoff_len: int, batch_size: int,
                  tick: Tick) -> Loss:
    """The loss on the trained tokens of `rows` (see the module docstring)."""
    import torch

    from engine.data.pipeline import IGNORE_INDEX, tokenize_rows
    from engine.train.collate import PaddingCollator

    tokenized, _ = tokenize_rows([row.row for row in rows], tokenizer, cutoff_len, "truncate", source="test set")
    device = next(model.parameters()).device
    total, count = 0.0, 0
    collate = PaddingCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)  # as training pads
    for batch in batches(tokenized, batch_size):
        padded = {key: tensor.to(device) for key, tensor in collate(list(batch)).items()}
        scored = int((padded["labels"][:, 1:] != IGNORE_INDEX).sum())
        if scored:
            with torch.inference_mode():
                output = model(**padded)
            total += float(output.loss) * scored
            count += scored
        tick(len(batch))
    tick(len(rows) - len(tokenized))  # rows training would drop (nothing to score) count as done
    loss = total / count if count else None
    return Loss(loss, math.exp(loss) if loss is not None and loss < 700 else None, count, len(tokenized))


def answer_rows(model: Any, tokenizer: Any, rows: Sequence[EvalRow], sampling: Any, batch_size: int,
                tick: Tick) -> dict[int, Answer]:
    """Each asked row's answer, by row number (see the module docstring)."""
    import torch

    from engine.chat.session import generation_kwargs
    from engine.data.masking import prompt_text

    asked = [row for row in rows if row.prompt is not None]
    kwargs = generation_kwargs(tokenizer, sampling)
    stops = set(kwargs["eos_token_id"])
    device = next(model.parameters()).device
    if not sampling.greedy and sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    answers: dict[int, Answer] = {}
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for batch in batches(asked, batch_size):
            texts = [prompt_text(row.prompt, tokenizer, row.tools) for row in batch]
            inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            inputs = {key: value.to(device) for key, value in inputs.items()}
            with torch.inference_mode():
                out = model.generate(**inputs, **kwargs)
            for row, ids in zip(batch, out[:, inputs["input_ids"].shape[1]:].tolist(), strict=True):
                answers[row.number] = _answer(tokenizer, ids, stops)
            tick(len(batch))
    finally:
        tokenizer.padding_side = side
    return answers


def _answer(tokenizer: Any, ids: list[int], stops: set[int]) -> Answer:
    """The generated ids up to the first end-of-turn token (the padding after it dropped)."""
    end = next((index for index, token in enumerate(ids) if token in stops), None)
    kept = ids if end is None else ids[:end]
    return Answer(text=tokenizer.decode(kept, skip_special_tokens=True).strip(), new_tokens=len(kept),
                  stopped=end is not None, raw=tokenizer.decode(kept, skip_special_tokens=False))
