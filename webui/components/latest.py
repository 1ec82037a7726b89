"""Only each visitor's newest request for an answer is shown: the Train tab's trainable count and dataset
inspection, and the Evaluate and Compare tabs' reading of their file's columns, run engine processes whose answers
can come back out of order (a cached one at once, a measured one seconds later)."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable


class LatestRequests:
    """The newest request of each visitor (gradio session) for one kind of answer, so that an answer coming
    back after the visitor asked for something newer is dropped instead of shown over the newer one."""

    def __init__(self, limit: int = 1000):
        self._latest: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()
        self._tickets = itertools.count(1)

    def claim(self, session: str | None, key: str) -> Callable[[], bool]:
        """Mark `key` as the session's newest request; returns "is it still the newest?"."""
        session = session or ""
        with self._lock:
            self._latest[session] = key
            self._latest.move_to_end(session)
            while len(self._latest) > self._limit:
                self._latest.popitem(last=False)
        return lambda: self._latest.get(session) == key

    def ticket(self, session: str | None) -> Callable[[], bool]:
        """claim with a key of its own: every request is newer than the ones before it, however alike."""
        return self.claim(session, str(next(self._tickets)))
