import numpy as np
import pytest

from biomedica.curate.hamming import hamming_pairs, hashes_from_hex, plan_chunks, popcount


def _brute_force(hashes: np.ndarray, threshold: int) -> set[tuple[int, int]]:
    distance = popcount(hashes[:, None] ^ hashes[None, :])
    first, second = np.nonzero(np.triu(distance <= threshold, 1))
    return set(zip(first.tolist(), second.tolist()))


def _pairs(blocks) -> list[tuple[int, int, int]]:
    return [(a, b, d) for q, db, dist in blocks for a, b, d in zip(q.tolist(), db.tolist(), dist.tolist())]


def _corpus(seed: int = 0, n: int = 1500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) | (rng.integers(0, 2, size=n, dtype=np.uint64) << np.uint64(63))
    # 300 planted near-duplicates with 1..9 flipped bits
    for i in range(300):
        bits = rng.choice(64, size=rng.integers(1, 10), replace=False)
        hashes[n - 300 + i] = hashes[i] ^ np.uint64(sum(1 << int(b) for b in bits))
    return hashes


@pytest.mark.parametrize("threshold", [0, 2, 5, 8, 12])
def test_self_join_equals_brute_force(threshold):
    hashes = _corpus()
    found = _pairs(hamming_pairs(hashes, None, threshold))
    assert len(found) == len({(a, b) for a, b, _ in found}), "a pair was reported twice"
    assert {(a, b) for a, b, _ in found} == _brute_force(hashes, threshold)
    assert all(d == popcount(np.array([hashes[a] ^ hashes[b]]))[0] for a, b, d in found)


def test_query_against_database_reports_every_match_once():
    database = _corpus(1)
    queries = database[[0, 5, 10]] ^ np.uint64(0b111)  # 3 bits away from three database items
    found = _pairs(hamming_pairs(queries, database, 4))
    assert sorted((q, d) for q, d, _ in found) == [(0, 0), (1, 5), (2, 10)]
    assert {dist for _, _, dist in found} == {3}


def test_plan_keeps_radius_small_and_covers_64_bits():
    plan = plan_chunks(1_000_000, 6)
    assert sum(plan.widths) == 64
    assert plan.radius <= 1
    assert plan_chunks(10, 0).radius == 0
    with pytest.raises(ValueError, match="0..63"):
        plan_chunks(10, 64)


def test_hex_parsing_marks_missing_and_invalid():
    values, valid = hashes_from_hex(["8000000000000000", None, "zz", "00000000000000ff"])
    assert valid.tolist() == [True, False, False, True]
    assert int(values[0]) == 1 << 63 and int(values[3]) == 255
