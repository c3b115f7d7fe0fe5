import threading
import time

import pytest

from biomedica.net.ratelimit import TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_then_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        bucket.acquire()
    # three tokens in the burst, then one every 0.1 s
    assert clock.slept == pytest.approx([0.1, 0.1])
    clock.now += 10  # idle refills only up to the burst
    for _ in range(3):
        bucket.acquire()
    assert len(clock.slept) == 2


def test_rate_holds_across_threads():
    bucket = TokenBucket(rate=100, burst=1)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [bucket.acquire() for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.38  # 40 requests at 100/s, the first free: >= 0.39 s
    assert elapsed < 2.0


def test_bad_settings():
    with pytest.raises(ValueError, match="Unlimited"):
        TokenBucket(rate=0)
    with pytest.raises(ValueError, match="cannot take 5"):
        TokenBucket(rate=1, burst=2).acquire(5)


def test_pickled_bucket_keeps_its_rate():
    import pickle

    copy = pickle.loads(pickle.dumps(TokenBucket(rate=7, burst=2)))
    assert (copy.rate, copy.burst) == (7.0, 2.0)
