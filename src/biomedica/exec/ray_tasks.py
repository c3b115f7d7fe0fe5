"""Executor `ray`: the unit function as Ray tasks, with one request rate limit for the whole cluster.

Each work unit becomes one Ray task (retried by Ray if its worker dies, so a unit function
must be safe to run again from scratch). The context is put in the object store once. When
the context reads the network with a request rate, every worker takes its tokens from one
`RateLimitLedger` actor, so the cluster as a whole keeps the rate the user set, instead of
each process keeping it on its own. A context opts in with three members:
`requests_per_second` (float or None), `request_burst` (optional) and
`with_rate_limiter(limiter) -> context` (a copy whose network client uses `limiter`).

Connects to the cluster named by `RAY_ADDRESS` (or the local one started by `ray start`),
else starts Ray on this machine; outputs must go to a folder every node can write (a shared
file system). Needs the optional extra: `pip install 'biomedica[ray]'`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from biomedica.exec.errors import ExecutorError, name_unit
from biomedica.net.ratelimit import TokenBucket

try:
    import ray
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ExecutorError(
        "the ray executor needs Ray: pip install 'biomedica[ray]' (or choose --executor local)"
    ) from exc

U = TypeVar("U")
R = TypeVar("R")


class RateLimitLedger:
    """The cluster's token bucket (runs as one Ray actor): hands out reservations, never sleeps.

    `reserve` books tokens with the same arithmetic as the per-process TokenBucket and
    returns how long the caller must wait; the caller sleeps on its own node, so the actor
    answers the next caller at once.
    """

    def __init__(self, rate: float, burst: float | None = None):
        self._wait = 0.0
        self._bucket = TokenBucket(rate, burst, sleep=self._record_wait)

    def _record_wait(self, seconds: float) -> None:
        self._wait = seconds

    def reserve(self, tokens: float = 1.0) -> float:
        self._wait = 0.0
        self._bucket.acquire(tokens)
        return self._wait


class ClusterRateLimiter:
    """RateLimiter (biomedica.net) backed by a RateLimitLedger actor; pickles as its actor handle."""

    def __init__(self, ledger: Any):
        self.ledger = ledger

    @classmethod
    def start(cls, rate: float, burst: float | None = None) -> "ClusterRateLimiter":
        actor = ray.remote(num_cpus=0)(RateLimitLedger).remote(rate, burst)
        return cls(actor)

    def acquire(self, tokens: float = 1.0) -> None:
        wait = ray.get(self.ledger.reserve.remote(tokens))
        if wait > 0:
            time.sleep(wait)

    def stop(self) -> None:
        ray.kill(self.ledger)


def _run_unit_task(fn: Callable[[U, Any], R], unit: U, context: Any) -> R:
    return fn(unit, context)


def _ensure_ray() -> bool:
    """Connect to the cluster (RAY_ADDRESS or a local `ray start`) or start one; True if started here."""
    if ray.is_initialized():
        return False
    ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
    return True


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def check_gpus(num_gpus: float) -> None:
    """Refuse a GPU share Ray could never grant on this cluster (its tasks would wait forever)."""
    if num_gpus < 0 or num_gpus > 1 and num_gpus != int(num_gpus):
        raise ExecutorError(f"GPUs per worker must be a share of one GPU (0-1) or a whole number, not {num_gpus}")
    have = ray.cluster_resources().get("GPU", 0)
    if num_gpus > 0 and have < num_gpus:
        raise ExecutorError(f"GPUs per worker is {num_gpus:g} but the Ray cluster has {have:g} GPUs; "
                            "drop --gpus-per-worker (CPU) or connect to a cluster with GPUs (RAY_ADDRESS)")


def run_ray(fn: Callable[[U, Any], R], units: list[U], context: Any, workers: int,
            num_gpus: float = 0.0) -> Iterator[tuple[U, R]]:
    """Run units as Ray tasks, at most `workers` at once (1, the default, means one per cluster CPU).

    Each task takes one CPU and `num_gpus` of a GPU (a fraction lets several tasks share one).
    """
    if not units:
        return
    started_here = _ensure_ray()
    limiter: ClusterRateLimiter | None = None
    pending: dict[Any, U] = {}
    try:
        if num_gpus:
            check_gpus(num_gpus)
        rate = getattr(context, "requests_per_second", None)
        if rate and hasattr(context, "with_rate_limiter"):
            limiter = ClusterRateLimiter.start(rate, getattr(context, "request_burst", None))
            context = context.with_rate_limiter(limiter)
        in_flight_cap = workers if workers > 1 else cluster_cpus()
        task = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=2)(_run_unit_task)
        context_ref = ray.put(context)
        queue = deque(units)
        while queue or pending:
            while queue and len(pending) < in_flight_cap:
                unit = queue.popleft()
                pending[task.remote(fn, unit, context_ref)] = unit
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                unit = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:
                    name_unit(exc, unit)
                    raise
                yield unit, result
    finally:
        for ref in pending:  # after an error, or when the caller stops early
            ray.cancel(ref)
        if limiter is not None:
            limiter.stop()
        if started_here:
            ray.shutdown()
