"""`data.reasoning`: keep (the default) trains reasoning where the template renders it, as before; drop cuts it out of
every assistant reply before templating, so no reasoning reaches the tokens, trained or not. Token level, through
load_rows and tokenize_rows as training calls them, under the ChatML fallback and the real QwQ template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.config import DataConfig
from engine.data.pipeline import load_rows, tokenize_rows
from engine.data.tokens import ensure_chat_template
from engine.jobs.failures import DataError
from tests.cli import write_rows
from tests.engine.test_templates import QWEN3_STYLE, family_tokenizer, labelled_runs
from tests.tiny import build_tokenizer

T1, T2 = "The user asks who I am.", "France: Paris."
A1, A2 = "I am a helpful assistant.", "Paris is the capital of France."
USER_1 = {"role": "user", "content": "Who are you?"}
USER_2 = {"role": "user", "content": "What is the capital of France?"}
ROWS = [
    # <think> blocks in the text; the second as DeepSeek-R1's data writes it (the template wrote the <think>)
    {"messages": [USER_1, {"role": "assistant", "content": f"<think>\n{T1}\n</think>\n\n{A1}"},
                  USER_2, {"role": "assistant", "content": f"{T2}\n</think>\n\n{A2}"}]},
    # reasoning fields, under both of the names rows carry it
    {"messages": [{"role": "system", "content": "Be brief."}, USER_1,
                  {"role": "assistant", "content": A1, "reasoning_content": T1},
                  USER_2, {"role": "assistant", "content": A2, "reasoning": T2}]},
]


def chatml() -> Any:
    tokenizer = build_tokenizer()
    ensure_chat_template(tokenizer)  # the tiny tokenizer has none: ChatML, as training installs it
    return tokenizer


TOKENIZERS = {"chatml": chatml, "qwq": lambda: family_tokenizer("qwq")}


def tokenized(tmp_path: Path, tokenizer: Any, reasoning: str | None) -> list[tuple[str, list[str]]]:
    """(the whole row decoded, its labelled runs decoded) per row, as training tokenizes the file."""
    options = {"reasoning": reasoning} if reasoning else {}
    rows, _ = load_rows(DataConfig(path=str(write_rows(tmp_path / "thinking.json", ROWS)), **options))
    out, _ = tokenize_rows(rows, tokenizer, 4096, "truncate")
    return [(tokenizer.decode(row["input_ids"]), [tokenizer.decode(run)
                                                  for run in labelled_runs(row["input_ids"], row["labels"])])
            for row in out]


@pytest.mark.parametrize("family", TOKENIZERS)
def test_drop_leaves_no_reasoning_in_inputs_or_labels(tmp_path: Path, family: str) -> None:
    tokenizer = TOKENIZERS[family]()
    for text, labels in tokenized(tmp_path, tokenizer, "drop"):
        for reasoning in ("<think>", "</think>", T1, T2):
            assert reasoning not in text, (reasoning, text)
        assert labels == [A1 + "<|im_end|>", A2 + "<|im_end|>"]


@pytest.mark.parametrize("family", TOKENIZERS)
def test_keep_trains_the_reasoning_as_before(tmp_path: Path, family: str) -> None:
    tokenizer = TOKENIZERS[family]()
    kept = tokenized(tmp_path, tokenizer, "keep")
    assert kept == tokenized(tmp_path, tokenizer, None)  # keep is the default
    for _, labels in kept:
        last = labels[-1]  # every template here keeps the last reply's reasoning (the first row's as written)
        assert f"{T2}\n</think>\n\n{A2}<|im_end|>" in last, labels


def test_drop_under_a_template_that_writes_the_think_block_itself(tmp_path: Path) -> None:
    """Qwen3's kind writes `<think>\\n\\n</think>\\n\\n` into the last reply when it has no reasoning (as it prompts
    with thinking off): that empty block is the template's own, and no reasoning text is left."""
    tokenizer = family_tokenizer("qwq")
    tokenizer.chat_template = QWEN3_STYLE
    for text, labels in tokenized(tmp_path, tokenizer, "drop"):
        assert T1 not in text and T2 not in text
        assert labels == [A1 + "<|im_end|>", f"<think>\n\n</think>\n\n{A2}<|im_end|>"]


def test_a_reply_that_is_only_reasoning_is_refused_under_drop(tmp_path: Path) -> None:
    rows = [ROWS[1], {"messages": [USER_1, {"role": "assistant", "content": f"<think>\n{T1} And then"}]}]
    path = write_rows(tmp_path / "cut.json", rows)
    assert load_rows(DataConfig(path=str(path)))[0][1]["messages"][1]["content"].startswith("<think>")  # keep: as is
    with pytest.raises(DataError) as error:
        load_rows(DataConfig(path=str(path), reasoning="drop"))
    assert str(error.value) == (
        "cut.json row 2 turn 2: the assistant reply is only reasoning, so data.reasoning: drop leaves nothing to "
        "train on: remove the turn or the row, or keep the reasoning (data.reasoning: keep).")
