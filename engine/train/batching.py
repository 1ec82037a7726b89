"""How rows become batches: padded (length-grouped) or packed (first-fit into rows of at most `pack_len` tokens),
and, for `train.packing: auto`, which of the two costs less on the data at hand.

The cost of a step is counted in multiply-adds from the token lengths the engine already has, simulating the
batches each sampler makes (the Trainer's length-grouped sampler for padding: shuffled megabatches of 50 batches,
each sorted by length; a random sampler for packing):

    linear    every token in the batch tensor, padding included, times the weights it passes through
              (2 per parameter forward, 2 more backward for the activations, 2 more where weights train)
    attention a row of L tokens costs L^2 per layer and hidden unit (QK^T and AV, forward and backward), padding
              included; a packed row attends through a mask over its whole length, so packing short rows
              together raises attention work while it removes padding

With a variable-length attention kernel (flash-attention on a GPU) packing is one row per batch with no padding and
per-example attention: it wins wherever length-grouped batches still hold padding. Without one (the CPU, SDPA),
packed rows are masked over their whole length and padded to the longest packed row of the batch: short rows
packed together cost more attention than they save in padding, and length-grouped padding (little padding once
sorted) usually wins; there, within MARGIN the two are taken as equal and padding, the simpler path, is used.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.estimate.batch import first_fit  # noqa: F401 - also re-exported (collate, tests)
from engine.sentences import said

MEGABATCH = 50  # transformers' LengthGroupedSampler sorts megabatches of 50 batches by length
MARGIN = 0.05  # masked packing must be estimated at least this much cheaper to be chosen
VARLEN_MARGIN = 0.01  # per-example (variable-length) packing: no downside, so a small saving is enough


@dataclass(frozen=True)
class Shape:
    """What the cost of a token and of attention depends on."""

    params: int  # parameters every token passes through (the base model's)
    trainable: int
    hidden: int
    layers: int


@dataclass(frozen=True)
class BatchCost:
    tokens: int  # in the batch tensors, padding included
    real: int  # without padding
    attention: int  # sum over rows of (row length)^2
    cost: float  # multiply-adds per epoch, relative

    @property
    def padding_share(self) -> float:
        return 1 - self.real / self.tokens if self.tokens else 0.0


def step_cost(tokens: int, attention: int, shape: Shape) -> float:
    frozen = shape.params - shape.trainable
    linear = tokens * (4 * frozen + 6 * shape.trainable)
    return linear + 12 * attention * shape.hidden * shape.layers


def padded_cost(lengths: list[int], batch_size: int, shape: Shape, seed: int = 0) -> BatchCost:
    order = lengths[:]
    random.Random(seed).shuffle(order)
    tokens = attention = 0
    size = MEGABATCH * batch_size
    for start in range(0, len(order), size):
        mega = sorted(order[start:start + size], reverse=True)
        for b in range(0, len(mega), batch_size):
            batch = mega[b:b + batch_size]
            tokens += len(batch) * batch[0]
            attention += len(batch) * batch[0] ** 2
    return BatchCost(tokens, sum(lengths), attention, step_cost(tokens, attention, shape))


def packed_cost(lengths: list[int], batch_size: int, pack_len: int | None, shape: Shape, varlen: bool = False,
                seed: int = 0) -> BatchCost:
    """Packed batches of a random sampler. With a variable-length attention kernel (flash-attention on a GPU) the
    batch is one row of its examples and each attends only over itself; otherwise each packed row is masked over
    its whole length and rows are padded to the longest."""
    if varlen:
        attention = sum(n * n for n in lengths)
        return BatchCost(sum(lengths), sum(lengths), attention, step_cost(sum(lengths), attention, shape))
    order = lengths[:]
    random.Random(seed).shuffle(order)
    tokens = attention = 0
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        bins = [sum(batch[i] for i in indices) for indices in first_fit(batch, pack_len)]
        tokens += len(bins) * max(bins)
        attention += len(bins) * max(bins) ** 2
    return BatchCost(tokens, sum(lengths), attention, step_cost(tokens, attention, shape))


@dataclass(frozen=True)
class Choice:
    packing: bool
    reason: str  # the run log's line


def choose(lengths: list[int], batch_size: int, pack_len: int | None, shape: Shape, varlen: bool = False) -> Choice:
    """`auto`: pack where its estimated cost is at least MARGIN below length-grouped padding."""
    padded = padded_cost(lengths, batch_size, shape)
    packed = packed_cost(lengths, batch_size, pack_len, shape, varlen)
    # A variable-length kernel makes packing never costlier (no padding, the same attention): a 1% saving counts.
    packing = packed.cost < (1 - (VARLEN_MARGIN if varlen else MARGIN)) * padded.cost
    how = said("engine.log.pack_varlen") if varlen else said("engine.log.pack_rows", pack_len=pack_len)
    reason = said("engine.log.batching_auto",
                  choice=said("engine.log.packed", how=how) if packing else said("engine.log.grouped_padding"),
                  ratio=f"{packed.cost / padded.cost:.2f}", padding=f"{padded.padding_share:.0%}",
                  packed=f"{packed.padding_share:.0%}", attention=f"{packed.attention / max(padded.attention, 1):.2f}")
    return Choice(packing, reason)
