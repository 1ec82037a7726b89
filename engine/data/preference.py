"""Preference pairs: rows of `prompt` / `chosen` / `rejected` -> token ids TRL's DPOTrainer trains on.

Shapes read (detected like the SFT formats, one DataError sentence naming the file, row and field otherwise):
- strings: `{"prompt": "...", "chosen": "...", "rejected": "..."}`, with an optional `system`;
- message lists, TRL's conversational shape: `prompt` a list of turns, `chosen` / `rejected` each a list holding
  the reply (`[{"role": "assistant", "content": "..."}]`);
- UltraFeedback's shape: `chosen` / `rejected` whole conversations ending in the reply, the turns before it the
  same on both sides (they are the prompt; a `prompt` string beside them is then only its summary);
- LLaMA-Factory's ranking files: alpaca (`instruction`, `input`, optional `system` and `history`, with `chosen` /
  `rejected` the two outputs; the prompt is built as SFT builds an alpaca row's) and sharegpt (`conversations`,
  the prompt turns, with `chosen` / `rejected` each one reply turn `{"from": "gpt", "value": "..."}`).
KTO's unpaired rows (`prompt` / `completion` / `label`) are engine/data/unpaired.py's.
A normalised pair is `{"messages": prompt turns, "chosen": reply turn, "rejected": reply turn}`.

Rendering: the engine's chat templating stays the one renderer. Each side is rendered as the whole conversation
(prompt turns + its reply) and labelled exactly as SFT labels it (engine.data.pipeline's `label_chat`, the
masking of engine/data/masking.py under any template); the reply's trained tokens are the completion, the tokens
before them the prompt. TRL 1.16's DPOTrainer would otherwise apply the tokenizer's template itself, to the
prompt with add_generation_prompt and to prompt + reply, and keep the difference: that trains the tokens SFT
masks (a template's trailing newline after the end-of-turn marker) and takes none of the engine's handling of
system folding, tools, reasoning or non-prefix-stable templates. So the trainer gets rows already tokenized
(`prompt_ids`, `chosen_ids`, `rejected_ids`: what its DataCollatorForPreference reads) and
engine/train/preference.py skips TRL's own dataset preparation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.config import DataConfig, RunConfig
from engine.config_stage import PAIR_COLUMNS, shape_problem  # PAIR_COLUMNS: the names a pair file maps to
from engine.data import formats, sources
from engine.data.pipeline import IGNORE_INDEX, TokenStats, as_trained, label_chat
from engine.jobs.failures import DataError
from engine.sentences import said

FORMAT = "preference"
SHAPES = {"alpaca ranking": "instruction", "sharegpt ranking": "conversations"}  # shape -> the key that marks it
SIDES = ("chosen", "rejected")
Message = dict[str, Any]


def is_pair(record: dict) -> bool:
    """Whether a record has the shape of a preference pair (a chosen or a rejected reply)."""
    return any(side in record for side in SIDES)


def load_pairs(cfg: DataConfig, seed: int) -> sources.Mixed:
    """Every dataset of data.path read as preference pairs, given its fraction of rows and mixed with `seed`."""
    return sources.load(cfg, seed, _load_one)


def _load_one(cfg: DataConfig) -> tuple[list[dict], str]:
    raw = sources.read_source(cfg.path, cfg.split)
    if cfg.max_samples:
        raw = raw[: cfg.max_samples]
    raw = pair_columns(raw, cfg.columns, Path(cfg.path).name)
    return trained_pairs(normalise_pairs(raw, Path(cfg.path).name), cfg, Path(cfg.path).name), pair_shape(raw)


def conversation_of(row: dict, reply: str) -> dict:
    """The conversation one reply of a normalised pair or KTO row ends (its prompt turns, then `row[reply]`), as an
    SFT row holds it."""
    return {"messages": [*row["messages"], row[reply]], **({"tools": row["tools"]} if "tools" in row else {})}


def trained_replies(rows: list[dict], replies: tuple[str, ...], cfg: DataConfig) -> list[dict]:
    """Normalised pairs (replies: chosen, rejected) or KTO rows (completion) as they train, through the SFT rows'
    own step (pipeline.as_trained): data.reasoning drop cuts the reasoning out of every assistant turn, the prompt's
    and each reply's, and data.replace fills the {{name}} placeholders of every text; a problem names the pair's
    row (each reply is checked as the conversation it ends, in the file's row order)."""
    out = [dict(row) for row in rows]
    for reply in replies:
        for row, trained in zip(out, as_trained([conversation_of(row, reply) for row in rows], cfg), strict=True):
            row["messages"], row[reply] = trained["messages"][:-1], trained["messages"][-1]
    return out


def trained_pairs(pairs: list[dict], cfg: DataConfig, name: str) -> list[dict]:
    """Normalised pairs as they train (trained_replies); DataError naming the first pair whose two replies became
    the same (data.reasoning drop cut the only difference, or data.replace filled it)."""
    out = trained_replies(pairs, SIDES, cfg)
    for number, pair in enumerate(out, 1):
        if pair["chosen"] == pair["rejected"]:
            made = said("engine.pair.made_by_reasoning" if cfg.reasoning == "drop" else "engine.pair.made_by_replace")
            raise DataError(said("engine.pair.same_once", name=name, number=number, made=made))
    return out


def pair_columns(records: list[dict], columns: dict[str, str], name: str) -> list[dict]:
    """The records with data.columns applied: {"chosen": "better", "rejected": "worse"} reads a file whose
    columns are named so (DataError naming the mapping where a name is no PAIR_COLUMNS or the file lacks it)."""
    return formats.apply_columns(records, columns, name, PAIR_COLUMNS)


def pair_shape(records: list[dict]) -> str:
    """The file's shape as the data summary names it, from its first row: a LLaMA-Factory ranking file or not."""
    first = records[0] if records else {}
    return next((f"{FORMAT}, {shape}" for shape, key in SHAPES.items() if key in first and "prompt" not in first),
                FORMAT)


def normalise_pairs(records: list[dict], name: str) -> list[dict]:
    """Every record as a normalised pair; DataError naming the first row that is no pair."""
    if records and formats.preference_shape(records[0]) == "kto":
        raise DataError(shape_problem("dpo", name, "kto"))
    if records and not is_pair(records[0]) and (shape := formats.row_format(records[0])):
        raise DataError(shape_problem("dpo", name, shape))
    if not records or not is_pair(records[0]):
        found = ", ".join(map(str, records[0])) if records else "no rows"
        raise DataError(said("engine.data.no_pair", name=name, found=found or "(none)"))
    return formats.each_row(records, name, _pair)


def _pair(record: dict) -> dict:
    for side in SIDES:
        if side not in record:
            raise formats.RowError(side, said("engine.pair.missing_side"))
    before_chosen, chosen = _side(record["chosen"], "chosen")
    before_rejected, rejected = _side(record["rejected"], "rejected")
    if before_chosen != before_rejected:
        raise formats.RowError("rejected", said("engine.pair.other_conversation"))
    prompt = before_chosen or _ranking_prompt(record) or _prompt(record.get("prompt"))
    if _content(chosen) == _content(rejected):
        raise formats.RowError("rejected", said("engine.pair.same_reply"))
    extra = {key: record[key] for key in ("system", "tools") if key in record}
    checked = [checked_conversation(prompt, reply, side, extra)
               for side, reply in zip(SIDES, (chosen, rejected), strict=True)]
    messages = checked[0]["messages"][:-1]
    pair = {"messages": messages, "chosen": checked[0]["messages"][-1], "rejected": checked[1]["messages"][-1]}
    return {**pair, "tools": checked[0]["tools"]} if "tools" in checked[0] else pair


def _ranking_prompt(record: dict) -> list[Message]:
    """The prompt turns of a LLaMA-Factory ranking row: an alpaca one's as SFT reads it (history, then instruction
    and input; its system is added with the pair's), a sharegpt one's `conversations`; [] for other rows."""
    if "prompt" in record:
        return []
    if "instruction" in record:  # the alpaca row SFT would read, less its output (a stand-in, dropped here)
        turns = formats.NORMALISERS["alpaca"]({**record, "system": None, "output": "-"})["messages"]
        return turns[:-1]
    if "conversations" in record:
        turns = record["conversations"]
        if not isinstance(turns, list) or not turns:
            raise formats.RowError("conversations", said("engine.pair.no_prompt_turns"))
        return turns
    return []


def _prompt(value: Any) -> list[Message]:
    """The prompt turns of a `prompt` field: a string is one user turn, a list is turns."""
    if isinstance(value, list) and value:
        return value
    if not isinstance(value, str) or not value.strip():
        raise formats.RowError("prompt", said("engine.pair.empty_prompt"))
    return [{"role": "user", "content": value}]


def _side(value: Any, side: str) -> tuple[list[Message], Message]:
    """(the turns before the reply, the reply) of a chosen/rejected field: a string, one turn or a list of turns."""
    if isinstance(value, str):
        if not value.strip():
            raise formats.RowError(side, said("engine.pair.empty_reply"))
        return [], {"role": "assistant", "content": value}
    if isinstance(value, dict):
        return [], value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return value[:-1], value[-1]
    raise formats.RowError(side, said("engine.pair.bad_reply"))


def _content(turn: Message) -> Any:
    return turn.get("content", turn.get("value"))


def checked_conversation(prompt: list[Message], reply: Message, side: str, extra: dict) -> dict:
    """prompt + reply checked and normalised as one conversation of the openai/sharegpt formats (roles mapped,
    user first, the reply an assistant turn, `extra` its system and tools); a problem is reported against `side`."""
    try:
        return formats.conversation({"messages": [*prompt, reply], **extra})
    except formats.RowError as error:
        raise formats.RowError(said("engine.pair.with_prompt", side=side), error.problem) from None


# ---------------------------------------------------------------------------------------------- tokens


def render_side(pair: dict, side: str, tokenizer: Any, source: str, number: int) -> tuple[list[int], list[int]]:
    """(prompt ids, reply ids) of one side: the conversation labelled as SFT labels it, cut before the last run of
    trained tokens (the reply and its end-of-turn marker); untrained tokens after it (a trailing newline) are
    left out, as SFT trains none of them."""
    row = {"messages": [*pair["messages"], pair[side]], "tools": pair.get("tools")}
    ids, labels = label_chat(row, tokenizer, source, number)
    trained = [index for index, label in enumerate(labels) if label != IGNORE_INDEX]
    if not trained:
        raise DataError(said("engine.pair.no_reply_token", name=source, number=number, side=side))
    end = trained[-1] + 1
    start = end
    while start > 0 and labels[start - 1] != IGNORE_INDEX:
        start -= 1
    return ids[:start], ids[start:end]


def tokenize_pairs(pairs: list[dict], tokenizer: Any, cutoff_len: int, overlength: str,
                   max_prompt_length: int | None = None, *, source: str = "dataset") -> tuple[list[dict], TokenStats]:
    """`{"prompt_ids", "chosen_ids", "rejected_ids"}` per pair. The prompt keeps its last max_prompt_length tokens;
    a pair longer than cutoff_len (prompt + its longer reply) is dropped, or its replies cut (overlength)."""
    stats = TokenStats(rows_in=len(pairs))
    out = []
    for number, pair in enumerate(pairs, 1):
        prompt, chosen = render_side(pair, "chosen", tokenizer, source, number)
        prompt_again, rejected = render_side(pair, "rejected", tokenizer, source, number)
        if prompt != prompt_again:
            raise DataError(said("engine.pair.prompt_differs", name=source, number=number))
        if max_prompt_length:
            prompt = prompt[-max_prompt_length:]
        longest = len(prompt) + max(len(chosen), len(rejected))
        stats.lengths.append(longest)
        room = cutoff_len - len(prompt)
        if longest > cutoff_len and (overlength == "drop" or room <= 0):
            stats.dropped += 1
            continue
        stats.truncated += longest > cutoff_len
        chosen, rejected = chosen[:room], rejected[:room]
        stats.target_tokens += len(chosen) + len(rejected)
        out.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    stats.rows_out = len(out)
    return out, stats


def tokenized_mix(config: RunConfig, tokenizer: Any, mixed: sources.Mixed, tokenize: Callable[..., Any],
                  noun: str) -> tuple[list[dict], TokenStats]:
    """Every dataset of `mixed` tokenized by `tokenize` (tokenize_pairs, or unpaired rows' tokenizer) and mixed
    as data.mix says, with their stats summed; DataError naming `noun` ("pair", "row") when none is left."""
    parts, stats = [], TokenStats()
    for part in mixed.parts:
        tokenized, own = tokenize(part.rows, tokenizer, config.train.cutoff_len, config.data.overlength,
                                  config.train.max_prompt_length, source=part.name)
        parts.append(tokenized)
        for key in ("rows_in", "rows_out", "truncated", "dropped", "target_tokens", "lengths"):
            setattr(stats, key, getattr(stats, key) + getattr(own, key))
    rows = sources.mix(parts, mixed.mix, mixed.seed)
    if not rows:
        named = said("engine.pair.noun_pair" if noun == "pair" else "engine.pair.noun_row")
        raise DataError(said("engine.pair.none_left", name=config.data.name, noun=named,
                             cutoff=config.train.cutoff_len))
    return rows, stats


def pair_splits(config: RunConfig, tokenizer: Any, mixed: sources.Mixed) -> tuple[list[dict], list[dict], TokenStats]:
    """Tokenized train and validation pairs, split by data.val_size with train.seed (as build_splits splits rows)."""
    pairs, stats = tokenized_mix(config, tokenizer, mixed, tokenize_pairs, "pair")
    if not config.data.val_size:
        return pairs, [], stats
    held = max(1, round(len(pairs) * config.data.val_size))
    if held >= len(pairs):
        raise DataError(said("engine.pair.too_few_for_val", name=config.data.name, pairs=len(pairs),
                             val_size=config.data.val_size))
    order = list(range(len(pairs)))
    random.Random(config.train.seed).shuffle(order)
    val = set(order[:held])
    return ([p for i, p in enumerate(pairs) if i not in val], [pairs[i] for i in sorted(val)], stats)
