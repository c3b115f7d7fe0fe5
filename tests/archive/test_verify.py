from biomedica.archive.verify import verify_archive


def test_intact_archive_has_no_problems(two_unit_archive):
    assert verify_archive(two_unit_archive) == []


def test_damage_is_reported_with_kind_and_fix(two_unit_archive):
    tar = two_unit_archive / "commercial" / "000001.tar"
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF  # flip one byte inside the first image: same size, other content
    tar.write_bytes(bytes(data))
    (two_unit_archive / "other" / "000000.parquet").unlink()
    (two_unit_archive / "noncommercial" / "sizes.json").write_text("{}")
    problems = verify_archive(two_unit_archive)
    by_kind = {p.kind: p for p in problems}
    assert set(by_kind) == {"checksum-mismatch", "missing-file", "sizes-stale"}
    assert by_kind["checksum-mismatch"].id == "commercial/000001.tar"
    assert "re-run the build to rewrite unit 1" in by_kind["checksum-mismatch"].message
    assert by_kind["missing-file"].id == "other/000000.parquet"
    assert verify_archive(two_unit_archive, checksums=False) != []
    assert {p.kind for p in verify_archive(two_unit_archive, checksums=False)} == {"missing-file", "sizes-stale"}


def test_truncated_file_is_a_size_mismatch(two_unit_archive):
    path = two_unit_archive / "articles" / "part-000000.parquet"
    path.write_bytes(path.read_bytes()[:-10])
    (problem,) = verify_archive(two_unit_archive)
    assert problem.kind == "size-mismatch" and problem.id == "articles/part-000000.parquet"
