"""Retry policy of every network read: how many retries, and exponential backoff with full jitter.

`retries` counts the retries after the first attempt, so a request is tried at most
`retries + 1` times (`attempts`), by the client and by the streaming reader alike; a
stream that resumed and delivered bytes again starts a fresh count. Only transient
failures are retried (see `biomedica.net.errors`). A stdlib dataclass, not a pydantic
model, so the `pipe:` shard helper can use it; pydantic configs validate it as a field.
"""

from __future__ import annotations

import random
from dataclasses import InitVar, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class RetryPolicy:
    """Retry n (0-based) waits a random time in [0, min(max_delay, base_delay * 2**n)].

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter") spreads the
    retries of many workers that failed together, instead of having them return in step.
    """

    __pydantic_config__: ClassVar[dict] = {"extra": "forbid"}  # read by pydantic when a config holds a RetryPolicy

    retries: int = 4  # retries after the first attempt (0 = try once)
    base_delay: float = 0.5  # seconds; the backoff ceiling doubles per retry
    max_delay: float = 30.0  # seconds; cap of one wait
    max_attempts: InitVar[int | None] = None  # old spelling, kept for one release: retries = max_attempts - 1

    def __post_init__(self, max_attempts: int | None) -> None:
        if max_attempts is not None:
            object.__setattr__(self, "retries", max_attempts - 1)
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0 (0 = one attempt, no retry), got {self.retries}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(f"base_delay and max_delay must be >= 0 seconds, got {self.base_delay}, {self.max_delay}")

    @property
    def attempts(self) -> int:
        """Tries per request, the first included."""
        return self.retries + 1

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 = the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry))
        return (rng or random).uniform(0.0, ceiling)
