"""Throughput of one training attempt: tokens (not padding) per second, owned by one object that the trainer and
its event callback share (the callback marks the start and each step, the trainer reads the figure). The attempt's
figure counts from the start of training, so the first step's start-up (kernels, caches, the first batches) is in
it; the steady figure counts from the end of the first step (metrics.json's steady_tokens_per_s, which the time
estimate before Start prefers: engine/estimate/timing.py)."""

from __future__ import annotations

import time


class Throughput:
    """Tokens seen and seconds spent since this attempt began (a resumed run counts only its own steps), and the rate
    since the last logging step."""

    def __init__(self) -> None:
        self.began = 0.0
        self.start_step = 0
        self.start_tokens = 0
        self.seconds = 0.0  # training time of this attempt, up to its last step
        self._last_tokens = 0
        self._last_time = 0.0
        self._first: tuple[float, int] | None = None  # (seconds, tokens) at the end of the attempt's first step

    def begin(self, step: int, tokens: int) -> None:
        """Training starts (or resumes) at `step` with `tokens` already seen."""
        self.began = self._last_time = time.time()
        self.start_step, self.start_tokens, self._last_tokens = step, tokens, tokens
        self._first = None

    def step_done(self, tokens: int | None = None) -> float:
        """A step ended (with `tokens` seen in all, where given): the seconds since training began."""
        self.seconds = time.time() - self.began
        if self._first is None and tokens is not None:
            self._first = (self.seconds, tokens)
        return self.seconds

    def steady_tokens_per_s(self, tokens: int) -> float | None:
        """The rate after the attempt's first step, with `tokens` seen in all; None before a second step."""
        if self._first is None or self.seconds <= self._first[0]:
            return None
        return (tokens - self._first[1]) / (self.seconds - self._first[0])

    def tokens_per_s(self, tokens: int) -> float:
        """The attempt's rate, with `tokens` seen in all."""
        return (tokens - self.start_tokens) / self.seconds if self.seconds else 0.0

    def since_last(self, tokens: int) -> float:
        """The rate since the previous call (a logging step's figure)."""
        now = time.time()
        rate = (tokens - self._last_tokens) / (now - self._last_time) if now > self._last_time else 0.0
        self._last_tokens, self._last_time = tokens, now
        return rate
