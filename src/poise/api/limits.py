"""How often a caller may ask: a sliding window of the last minute's requests, by key,
counted in this server process.

Two limits use it: sign-ins by address (:data:`poise.api.auth.ATTEMPTS` a minute,
whoever they name), and every API request by caller — the user, once their credentials
hold, else the address — at ``POISE_API_RATE`` a minute (0: no limit). Over a limit,
the answer is ``429 Too Many Requests`` with ``Retry-After``: the seconds until the
oldest request counted leaves the window.

Counted per process: ``poise serve --workers N`` lets a caller up to N times the rate,
spread over the workers as the kernel hands them connections. A limit across workers
and machines needs a shared count (the database, Redis): a later step.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from poise.domain.errors import ForbiddenError

__all__ = ["TooManyRequestsError", "Window"]


class TooManyRequestsError(ForbiddenError):
    """Over a rate limit: ``retry_after`` seconds until the next request is counted."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Window:
    """At most ``limit`` requests a key in any ``seconds`` (a sliding window: the times
    of those counted, at most ``limit`` a key, kept until they leave it; a request
    refused is not counted). Safe to share between threads."""

    def __init__(
        self, limit: int, seconds: float = 60, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("a window lets at least one request through")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def wait(self, key: str) -> int:
        """Count a request of ``key`` and answer 0 — or, when ``key`` has had its
        ``limit`` in the window already, count nothing and answer the whole seconds to
        wait until one of those leaves it (at least 1)."""
        now = self._clock()
        with self._lock:
            if now - self._swept > self.seconds:
                self._sweep(now)
            seen = self._seen.get(key)
            if seen is None:
                seen = self._seen[key] = deque()
            while seen and now - seen[0] >= self.seconds:
                seen.popleft()
            if len(seen) >= self.limit:
                return max(1, math.ceil(self.seconds - (now - seen[0])))
            seen.append(now)
            return 0

    def __len__(self) -> int:
        """How many keys the window holds: those with a request in it, and any not yet
        swept away."""
        return len(self._seen)

    def _sweep(self, now: float) -> None:
        """Forget the keys with nothing in the window: callers come and go."""
        for key in [
            k for k, seen in self._seen.items() if not seen or now - seen[-1] >= self.seconds
        ]:
            del self._seen[key]
        self._swept = now
