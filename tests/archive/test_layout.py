from pathlib import Path

import pytest

from biomedica.archive.layout import ArchiveLayout, _unit_id_from_name, temp_path, unit_stem


def test_paths_follow_the_design_layout(tmp_path):
    layout = ArchiveLayout(tmp_path)
    assert layout.shard("commercial", 7) == tmp_path / "commercial" / "000007.tar"
    assert layout.shard_index("other", 7) == tmp_path / "other" / "000007.parquet"
    assert layout.sizes("noncommercial") == tmp_path / "noncommercial" / "sizes.json"
    assert layout.articles(12) == tmp_path / "articles" / "part-000012.parquet"
    assert layout.errors(12) == tmp_path / "errors" / "part-000012.parquet"
    assert layout.marker(3) == tmp_path / "_units" / "000003.json"
    assert len(layout.unit_outputs(0)) == 8


def test_bad_unit_id_and_group_are_refused(tmp_path):
    with pytest.raises(ValueError, match="non-negative int"):
        unit_stem(-1)
    with pytest.raises(ValueError, match="unknown license group 'cc-by'"):
        ArchiveLayout(tmp_path).shard("cc-by", 0)


def test_temporaries_of_any_process_are_found(tmp_path):
    layout = ArchiveLayout(tmp_path)
    (tmp_path / "commercial").mkdir()
    (tmp_path / "articles").mkdir()
    stray = [
        tmp_path / "commercial" / ".000004.tar.tmp-123",
        tmp_path / "commercial" / ".000004.tar.sorted.tmp-9",
        tmp_path / "articles" / ".part-000004.parquet.tmp-77",
    ]
    for path in stray + [tmp_path / "commercial" / ".000005.tar.tmp-1", tmp_path / "commercial" / "000004.tar"]:
        path.write_bytes(b"")
    assert sorted(layout.unit_temporaries(4)) == sorted(stray)
    assert layout.unit_ids_with_files() == {4, 5}
    assert temp_path(Path("/x/000001.tar")).name.startswith(".000001.tar.tmp-")


@pytest.mark.parametrize(
    ("name", "unit"),
    [("000012.tar", 12), ("part-000003.parquet", 3), (".000009.tar.tmp-5", 9), ("sizes.json", None)],
)
def test_unit_id_from_file_name(name, unit):
    assert _unit_id_from_name(name) == unit
