import random

from biomedica.net.retry import RetryPolicy


def test_full_jitter_stays_under_the_doubling_ceiling():
    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=3.0)
    rng = random.Random(0)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert max(delays) <= ceiling
        assert min(delays) >= 0.0
        assert max(delays) > ceiling * 0.8  # jitter spans the whole range
        assert len(set(delays)) > 150  # and is not a fixed step
