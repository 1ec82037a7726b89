"""`train.packing: auto` picks the batching its cost model estimates cheaper, from the token lengths at hand: padding
where rows are near the cutoff (and, on the CPU, wherever length-grouping leaves little padding), packing where a
variable-length attention kernel can take a long tail of short rows without padding."""

from __future__ import annotations

import random

from engine.train.batching import Shape, choose, packed_cost, padded_cost

CUTOFF = 1024
LLAMA_1B = Shape(params=1_100_000_000, trainable=12_000_000, hidden=2048, layers=22)  # LoRA on a 1B Llama
DEMO = Shape(params=5_800_000, trainable=230_000, hidden=256, layers=6)  # LoRA on the bundled demo model


def near_cutoff(n: int = 512) -> list[int]:
    rng = random.Random(1)
    return [rng.randint(CUTOFF - 64, CUTOFF) for _ in range(n)]


def long_tail(n: int = 512) -> list[int]:
    """A third of the rows cut at the cutoff, the rest a long tail of short ones, as public instruction sets have."""
    rng = random.Random(2)
    return [CUTOFF if rng.random() < 1 / 3 else min(CUTOFF, int(rng.lognormvariate(4.5, 0.9)) + 8) for _ in range(n)]


def test_padding_where_every_row_is_near_the_cutoff():
    for varlen in (False, True):
        for shape in (LLAMA_1B, DEMO):
            choice = choose(near_cutoff(), 8, None if varlen else CUTOFF, shape, varlen=varlen)
            assert not choice.packing, choice.reason
            assert choice.reason.startswith("batching: length-grouped padding (auto: packing estimated at")


def test_packing_with_per_example_attention_on_a_long_tail():
    choice = choose(long_tail(), 8, None, LLAMA_1B, varlen=True)
    assert choice.packing, choice.reason
    assert "one row per batch, per-example attention" in choice.reason


def test_masked_packing_on_the_cpu_loses_to_length_grouped_padding():
    """Without a variable-length kernel packed rows pay a masked square and the padding to the batch's longest
    packed row: on the same long tail, padding is cheaper for the demo model and the 1B alike."""
    for shape in (DEMO, LLAMA_1B):
        padded = padded_cost(long_tail(), 8, shape)
        packed = packed_cost(long_tail(), 8, CUTOFF, shape)
        assert packed.cost > padded.cost and packed.attention > padded.attention
        assert not choose(long_tail(), 8, CUTOFF, shape).packing


def test_the_costs_count_what_the_batches_hold():
    lengths = [10, 10, 10, 10, 100, 100, 100, 100]
    padded = padded_cost(lengths, 4, DEMO)
    assert (padded.tokens, padded.real, padded.attention) == (440, 440, 40_400)  # sorted: no padding at all
    packed = packed_cost(lengths, 4, None, DEMO, varlen=True)
    assert (packed.tokens, packed.attention) == (440, 40_400)
    unbounded = packed_cost(lengths, 8, None, DEMO)  # the whole batch in one masked row
    assert (unbounded.tokens, unbounded.attention) == (440, 440 ** 2)
