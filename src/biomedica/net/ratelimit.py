"""Request rate limits: a thread-safe token bucket behind a one-method interface.

Every request attempt (retries included) calls `acquire()` first. The token bucket limits
one process; a cluster-wide limit plugs in the same interface (e.g. a Ray actor that hands
out tokens), so the client never knows which it has.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class RateLimiter(Protocol):
    def acquire(self, tokens: float = 1.0) -> None:
        """Block until `tokens` requests may be sent."""


class Unlimited:
    """No limit (the default for a local or private bucket)."""

    def acquire(self, tokens: float = 1.0) -> None:
        return None


class TokenBucket:
    """At most `rate` requests per second on average, bursts up to `burst`; thread-safe.

    Waiters reserve their tokens under the lock and sleep outside it, so many threads
    share the rate fairly in arrival order and no thread spins.
    """

    def __init__(self, rate: float, burst: float | None = None, clock=time.monotonic, sleep=time.sleep):
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests/s, got {rate}; use Unlimited() for no limit")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1 request, got {burst}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> None:
        if tokens > self.burst:
            raise ValueError(f"cannot take {tokens} tokens at once from a bucket of {self.burst}")
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= tokens  # may go negative: a reservation that later callers queue behind
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)

    def __getstate__(self):  # locks do not pickle: a copy in another process starts full
        return {"rate": self.rate, "burst": self.burst}

    def __setstate__(self, state):
        self.__init__(state["rate"], state["burst"])
