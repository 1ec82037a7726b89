"""The largest batch a dataset makes, from its rows' token lengths: plain Python, shared by the estimate before Start
(engine/estimate/memory.py, where the dataset's lengths are known) and the check before the first step
(engine/train/preflight.py), and first-fit packing itself (engine/train/batching.py, collate.py).
"""

from __future__ import annotations


def first_fit(lengths: list[int], capacity: int | None) -> list[list[int]]:
    """Indices of rows packed into bins of at most `capacity` tokens, longest row first, each into the first bin
    it fits (a row longer than `capacity` gets a bin of its own); None: every row in one bin."""
    if capacity is None:
        return [list(range(len(lengths)))] if lengths else []
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fit = next((b for b, free in enumerate(room) if lengths[index] <= free), None)
        if fit is None:
            bins.append([index])
            room.append(capacity - lengths[index])
        else:
            bins[fit].append(index)
            room[fit] -= lengths[index]
    return bins


def largest_batch(lengths: list[int], batch_size: int, packing: bool, pack_len: int | None = None) -> tuple[int, int]:
    """(rows, tokens per row) of the largest batch: packed, the longest rows first-fit into rows of at most
    `pack_len` tokens (None: one row); padded, `batch_size` rows of the longest length."""
    longest = sorted(lengths, reverse=True)[:batch_size]
    if packing:
        bins = [sum(longest[i] for i in indices) for indices in first_fit(longest, pack_len)]
        return len(bins), max(bins, default=0)
    return len(longest), max(longest, default=0)
