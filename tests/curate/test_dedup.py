import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from biomedica.archive.reader import iter_samples, read_shard_index
from biomedica.curate.config import DedupConfig
from biomedica.curate.dedup import DEDUP_INPUT_COLUMNS, DEDUP_SCHEMA, find_duplicates, load_eval_images


def _index(rows):
    columns = {c: [r.get(c) for r in rows] for c in DEDUP_INPUT_COLUMNS}
    return pa.table(columns)


def _row(key, sha, phash, group="commercial", size=(100, 100)):
    return {"key": key, "pmcid": key.split("_")[0], "sha256": sha, "phash": phash, "width": size[0],
            "height": size[1], "license_group": group}


def test_groups_canonical_and_kinds_on_hand_made_rows():
    rows = [
        _row("PMC1_000", "a" * 64, "ffff0000ffff0000", group="other"),
        _row("PMC2_000", "a" * 64, "ffff0000ffff0000", group="commercial"),  # exact copy, better licence
        _row("PMC3_000", "b" * 64, "ffff0000ffff0003", size=(400, 300)),  # 2 bits away: near
        _row("PMC3_001", "c" * 64, "0123456789abcdef"),
        _row("PMC4_000", "d" * 64, None),  # no pHash: only exact matching
    ]
    table = find_duplicates(_index(rows), DedupConfig(near_threshold=4)).to_pylist()
    by_key = {r["key"]: r for r in table}
    assert find_duplicates(_index(rows)).schema == DEDUP_SCHEMA
    assert {by_key[k]["dup_group"] for k in ("PMC1_000", "PMC2_000", "PMC3_000")} == {"PMC1_000"}
    assert by_key["PMC1_000"]["exact_group"] == by_key["PMC2_000"]["exact_group"] == "PMC1_000"
    assert by_key["PMC3_000"]["exact_group"] == "PMC3_000"
    assert [by_key[k]["dup_kind"] for k in sorted(by_key)] == ["near", "near", "near", "unique", "unique"]
    # commercial beats other; the bigger near copy is commercial too but the exact one comes first by size? no:
    # PMC3_000 (commercial, 400x300) has more pixels than PMC2_000 (commercial, 100x100)
    assert [k for k, r in by_key.items() if r["canonical"]] == ["PMC3_000", "PMC3_001", "PMC4_000"]
    assert by_key["PMC1_000"]["canonical_key"] == "PMC3_000"
    assert by_key["PMC1_000"]["distance_to_canonical"] == 2
    assert by_key["PMC1_000"]["group_size"] == 3 and by_key["PMC1_000"]["cross_article"] is True
    assert by_key["PMC4_000"]["distance_to_canonical"] == 0


def test_threshold_zero_only_links_equal_hashes():
    rows = [_row("PMC1_000", "a" * 64, "ffff0000ffff0000"), _row("PMC2_000", "b" * 64, "ffff0000ffff0001")]
    table = find_duplicates(_index(rows), DedupConfig(near_threshold=0))
    assert table.column("dup_kind").to_pylist() == ["unique", "unique"]


def test_many_equal_hashes_form_one_group_without_quadratic_pairs():
    rows = [_row(f"PMC{i}_000", f"{i:064x}", "8000000000000000") for i in range(3000)]
    table = find_duplicates(_index(rows))
    assert set(table.column("dup_group").to_pylist()) == {"PMC0_000"}
    assert sum(table.column("canonical").to_pylist()) == 1


def test_duplicate_keys_are_refused():
    rows = [_row("PMC1_000", "a" * 64, "ffff0000ffff0000")] * 2
    with pytest.raises(ValueError, match="duplicate sample keys"):
        find_duplicates(_index(rows))


def test_real_archive_finds_planted_duplicates(curation_archive):
    index = read_shard_index(curation_archive, columns=DEDUP_INPUT_COLUMNS)
    by_key = {r["key"]: r for r in find_duplicates(index, DedupConfig(near_threshold=6)).to_pylist()}
    # PMC9000100 is a byte copy of PMC9000004
    assert by_key["PMC9000100_000"]["exact_group"] == "PMC9000004_000"
    assert by_key["PMC9000100_001"]["exact_group"] == "PMC9000004_001"
    # PMC9000101's first image was downscaled and re-encoded: near, not exact
    assert by_key["PMC9000101_000"]["exact_group"] == "PMC9000101_000"
    assert by_key["PMC9000101_000"]["dup_group"] == by_key["PMC9000008_000"]["dup_group"]
    assert by_key["PMC9000101_000"]["dup_kind"] == "near"
    assert 0 <= by_key["PMC9000101_000"]["distance_to_canonical"] <= 6
    # one canonical per group
    groups = {}
    for row in by_key.values():
        groups.setdefault(row["dup_group"], []).append(row["canonical"])
    assert all(sum(flags) == 1 for flags in groups.values())


def test_eval_leaks_from_an_image_folder(curation_archive, tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    samples = {record["key"]: (record, image) for record, image in iter_samples(curation_archive)}
    record, image = samples["PMC9000007_004"]
    (eval_dir / "exact.jpg").write_bytes(image)  # the same bytes
    record, image = samples["PMC9000009_000"]
    with Image.open(io.BytesIO(image)) as decoded:  # re-encoded at another size: a pHash match
        decoded.convert("RGB").resize((150, 150)).save(eval_dir / "resized.jpg", quality=90)
    (eval_dir / "broken.png").write_bytes(b"\x89PNG not really")
    eval_set = load_eval_images(eval_dir)
    assert eval_set.ids == ["broken.png", "exact.jpg", "resized.jpg"]
    assert [e.kind for e in eval_set.errors] == ["eval-image-unreadable"]
    index = read_shard_index(curation_archive, columns=DEDUP_INPUT_COLUMNS)
    leaks = {r["key"]: r for r in find_duplicates(index, DedupConfig(), eval_set).to_pylist() if r["leak"]}
    assert leaks["PMC9000007_004"]["leak_match"] == "exact.jpg" and leaks["PMC9000007_004"]["leak_distance"] == 0
    assert leaks["PMC9000009_000"]["leak_match"] == "resized.jpg"
    assert len(leaks) <= 4  # nothing else (allowing for near-duplicates of the two in the archive)


def test_eval_hash_table_formats(tmp_path):
    (tmp_path / "hashes.txt").write_text("ffff0000ffff0000\n\n0123456789abcdef\n")
    assert load_eval_images(tmp_path / "hashes.txt").phash == ["ffff0000ffff0000", "0123456789abcdef"]
    pq.write_table(pa.table({"id": ["x"], "phash": ["ffff0000ffff0000"]}), tmp_path / "h.parquet")
    assert load_eval_images(tmp_path / "h.parquet").ids == ["x"]
    (tmp_path / "bad.csv").write_text("name\nfoo\n")
    with pytest.raises(ValueError, match="phash"):
        load_eval_images(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="evaluation image set not found"):
        load_eval_images(tmp_path / "missing")


def test_duplicates_inside_one_article_are_not_cross_article():
    rows = [
        _row("PMC5_000", "e" * 64, "00000000ffffffff"),
        _row("PMC5_001", "e" * 64, "00000000ffffffff"),
        _row("PMC6_000", "", "123456789abcdef0"),  # empty sha256: its own exact group
        _row("PMC7_000", "", "fedcba9876543210"),
    ]
    by_key = {r["key"]: r for r in find_duplicates(_index(rows)).to_pylist()}
    assert by_key["PMC5_001"]["dup_kind"] == "exact" and by_key["PMC5_001"]["cross_article"] is False
    assert by_key["PMC6_000"]["exact_group"] == "PMC6_000" and by_key["PMC7_000"]["exact_group"] == "PMC7_000"
    assert by_key["PMC5_000"]["canonical"] and not by_key["PMC5_001"]["canonical"]
