"""train.stage -> what a run trains on and with: a table, not an if-chain (as engine/model/methods.py is for methods).

Each Objective brings its data shape (how the datasets are read and tokenized), how its batches are formed, the
trainer that trains it and the names of the curves that trainer reports beside the loss (written as named
Metrics values, drawn on the page without more code). sft and pretrain are the engine's path as it always was
(the data's format decides between chat rows and plain text); dpo, orpo and simpo train preference pairs, kto
unpaired replies marked good or bad, each with its TRL trainer (engine/train/preference.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config import DataConfig, RunConfig
from engine.data import sources
from engine.sentences import said
from engine.train.batching import Choice

Rows = list[dict]


@dataclass(frozen=True)
class Objective:
    stage: str
    data: str  # the data shape, in words
    load: Callable[[DataConfig, int], sources.Mixed]  # (data config, seed) -> the datasets read and normalised
    tokenize: Callable[[RunConfig, Any, sources.Mixed, Any], tuple[Rows, Rows]]  # -> (train rows, validation rows)
    lengths: Callable[[Rows], list[int]]  # tokens of each sequence as the batch holds it (pre-flight, batching)
    batching: Callable[[RunConfig, Any, int, list[int]], Choice]  # packed or padded, and why
    build: Callable[..., Any]  # build_trainer's signature: the trainer, ready to train
    curves: tuple[str, ...] = ()  # values the trainer logs beside loss, learning rate and grad norm
    sequences: int = 1  # sequences a batch holds per example: a pair's chosen and rejected, padded alike


# ---------------------------------------------------------------------------------------------- sft, pretrain


def _load_rows(cfg: DataConfig, seed: int) -> sources.Mixed:
    from engine.data.pipeline import load_datasets

    return load_datasets(cfg, seed)


def _tokenize_rows(config: RunConfig, tokenizer: Any, datasets: sources.Mixed, reporter: Any) -> tuple[Rows, Rows]:
    from engine.data.pipeline import template_notes
    from engine.data.tokcache import tokenized_splits

    train_rows, val_rows, stats, cached = tokenized_splits(config, tokenizer, datasets)
    for note in template_notes(datasets.rows, tokenizer):
        reporter.info(note)
    reporter.info(said("engine.log.tokenized", train=len(train_rows), val=len(val_rows), truncated=stats.truncated,
                       dropped=stats.dropped, cutoff=config.train.cutoff_len,
                       cached=said("engine.log.from_cache") if cached else ""))
    return train_rows, val_rows


def _row_lengths(rows: Rows) -> list[int]:
    return [len(row["input_ids"]) for row in rows]


def _plan_rows(config: RunConfig, model: Any, trainable: int, lengths: list[int]) -> Choice:
    from engine.train.trainer import plan_batching

    return plan_batching(config, model, trainable, lengths)


def _build_rows(*args: Any) -> Any:
    from engine.train.trainer import build_trainer

    return build_trainer(*args)


# ---------------------------------------------------------------------------------------------- preference pairs


def _load_pairs(cfg: DataConfig, seed: int) -> sources.Mixed:
    from engine.data.preference import load_pairs

    return load_pairs(cfg, seed)


def _tokenize_pairs(config: RunConfig, tokenizer: Any, datasets: sources.Mixed, reporter: Any) -> tuple[Rows, Rows]:
    from engine.data.pipeline import template_notes
    from engine.data.preference import pair_splits

    train_rows, val_rows, stats = pair_splits(config, tokenizer, datasets)
    chosen = [{"messages": [*pair["messages"], pair["chosen"]], "tools": pair.get("tools")} for pair in datasets.rows]
    for note in template_notes(chosen, tokenizer):
        reporter.info(note)
    reporter.info(said("engine.log.tokenized_pairs", train=len(train_rows), val=len(val_rows),
                       truncated=stats.truncated, dropped=stats.dropped, cutoff=config.train.cutoff_len))
    return train_rows, val_rows


def _pair_lengths(rows: Rows) -> list[int]:
    """Two sequences per pair (prompt + chosen, prompt + rejected), each padded to the longer of them."""
    longer = [len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"])) for row in rows]
    return [length for length in longer for _ in range(2)]


def _plan_pairs(_config: RunConfig, _model: Any, _trainable: int, _lengths: list[int]) -> Choice:
    return Choice(False, said("engine.log.batching_pairs"))


def _builder(curves: tuple[str, ...]) -> Callable[..., Any]:
    def build(*args: Any) -> Any:
        from engine.train.preference import build_preference_trainer

        return build_preference_trainer(*args, curves=curves)

    return build


# ---------------------------------------------------------------------------------------------- KTO's rows


def _load_unpaired(cfg: DataConfig, seed: int) -> sources.Mixed:
    from engine.data.unpaired import load_unpaired

    return load_unpaired(cfg, seed)


def _tokenize_unpaired(config: RunConfig, tokenizer: Any, datasets: sources.Mixed, reporter: Any,
                       ) -> tuple[Rows, Rows]:
    from engine.data.pipeline import template_notes
    from engine.data.unpaired import unpaired_splits

    train_rows, val_rows, stats = unpaired_splits(config, tokenizer, datasets)
    rows = [{"messages": [*row["messages"], row["completion"]], "tools": row.get("tools")} for row in datasets.rows]
    for note in template_notes(rows, tokenizer):
        reporter.info(note)
    good = sum(row["label"] for row in train_rows)
    reporter.info(said("engine.log.tokenized_kto", train=len(train_rows), good=good, bad=len(train_rows) - good,
                       val=len(val_rows), truncated=stats.truncated, dropped=stats.dropped,
                       cutoff=config.train.cutoff_len))
    return train_rows, val_rows


def _unpaired_lengths(rows: Rows) -> list[int]:
    """Two sequences per row: its own and the mismatched one of its KL estimate (another row's reply)."""
    return [len(row["prompt_ids"]) + len(row["completion_ids"]) for row in rows for _ in range(2)]


def _plan_unpaired(_config: RunConfig, _model: Any, _trainable: int, _lengths: list[int]) -> Choice:
    return Choice(False, said("engine.log.batching_kto"))


# What the trainers log beside the loss. DPO: the implicit rewards beta * log(pi / pi_ref) of the chosen and the
# rejected replies, their mean margin, and the share of pairs whose chosen reply wins (preference accuracy).
# ORPO and SimPO: the same names for their reference-free rewards (beta times the reply's average
# log-probability), and the chosen reply's SFT loss (ORPO: the part of its loss that is SFT's). KTO: the rewards
# of the good and the bad replies of each batch, their margin, and its estimate of the KL to the reference.
DPO_CURVES = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")
ODDS_CURVES = (*DPO_CURVES, "nll_loss", "log_odds_ratio")
SIMPO_CURVES = (*DPO_CURVES, "nll_loss")
KTO_CURVES = ("rewards/chosen", "rewards/rejected", "rewards/margins", "kl")

_ROWS = dict(load=_load_rows, tokenize=_tokenize_rows, lengths=_row_lengths, batching=_plan_rows, build=_build_rows)
OBJECTIVES: dict[str, Objective] = {
    "sft": Objective("sft", "chat rows (or plain text)", **_ROWS),
    "pretrain": Objective("pretrain", "plain text (or chat rows)", **_ROWS),
    **{stage: Objective(stage, "preference pairs: prompt, chosen, rejected", load=_load_pairs,
                        tokenize=_tokenize_pairs, lengths=_pair_lengths, batching=_plan_pairs, build=_builder(curves),
                        curves=curves, sequences=2)
       for stage, curves in (("dpo", DPO_CURVES), ("orpo", ODDS_CURVES), ("simpo", SIMPO_CURVES))},
    "kto": Objective("kto", "replies marked good or bad: prompt, completion, label (or pairs, split)",
                     load=_load_unpaired, tokenize=_tokenize_unpaired, lengths=_unpaired_lengths,
                     batching=_plan_unpaired, build=_builder(KTO_CURVES), curves=KTO_CURVES, sequences=2),
}


def objective(stage: str) -> Objective:
    """The stage's objective (config validation refused the stages this table does not hold)."""
    return OBJECTIVES[stage]
