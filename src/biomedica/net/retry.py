"""Retry policy: how many attempts, and exponential backoff with full jitter between them."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    """Attempt n (0-based) waits a random time in [0, min(max_delay, base_delay * 2**n)].

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter") spreads the
    retries of many workers that failed together, instead of having them return in step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, description="tries per request, the first included")
    base_delay: float = Field(default=0.5, ge=0, description="seconds; the backoff ceiling doubles per retry")
    max_delay: float = Field(default=30.0, ge=0, description="seconds; cap of one wait")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 = the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry))
        return (rng or random).uniform(0.0, ceiling)
