import io
import shutil

from rich.console import Console

from biomedica.archive import finalize_archive, inspect_archive
from biomedica.cli.inspect import render_report


def _render(report) -> str:
    buffer = io.StringIO()
    render_report(report, Console(file=buffer, width=140, color_system=None))
    return buffer.getvalue()


def test_counts_of_a_complete_archive(two_unit_archive):
    report = inspect_archive(two_unit_archive)
    assert report.status == "complete" and report.advice is None
    assert (report.total_articles, report.total_samples, report.total_errors) == (4, 8, 1)
    assert report.units_complete == 2 and report.units_incomplete == []
    assert report.samples_by_group == {"commercial": 5, "other": 2, "noncommercial": 1}
    assert report.samples_by_year == {"2005": 4, "2023": 3, "2024": 1}
    assert report.top_journals[:2] == [("Front Plant Sci", 3), ("Breast Cancer Res", 2)]
    assert report.samples_by_format == {"jpg": 7, "png": 1}
    assert report.errors_by_kind == {"image-missing": 1}
    example = report.example
    assert example.key == "PMC10118017_000"
    assert example.caption == "Examples of major anthocyanin species in Andean maize."
    assert (example.width, example.height, example.mentions) == (590, 900, 2)
    assert example.image_bytes == 41572 and example.license == "CC BY 4.0"


def test_rendered_report_shows_the_counts(two_unit_archive):
    text = _render(inspect_archive(two_unit_archive, top_journals=3))
    assert "status: complete" in text
    assert "commercial" in text and "62.5%" in text  # 5 of 8 samples
    assert "Genome Biol" in text and "Cell Death Discov" not in text  # top 3 journals only
    assert "image-missing" in text
    assert "PMC10118017_000" in text and "590×900 px, 41,572 bytes" in text
    for line in text.splitlines():
        if "samples" in line and "│" in line and "share" not in line:
            assert line.split("│")[2].strip() == "8"


def test_not_an_archive_says_what_to_do(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    report = inspect_archive(tmp_path)
    assert report.status == "not-archive"
    text = _render(report)
    assert "is not a biomedica archive" in " ".join(text.split())
    assert "biomedica ingest" in " ".join(text.split())
    assert inspect_archive(tmp_path / "missing").status == "not-archive"


def test_unfinalized_build_is_reported_as_interrupted(tmp_path, write_unit):
    root = tmp_path / "archive"
    write_unit(root, 0)
    report = inspect_archive(root)
    assert report.status == "interrupted" and "manifest.json is missing" in report.advice
    assert report.total_samples == 5
    (root / "commercial" / ".000001.tar.tmp-4242").write_bytes(b"partial")
    report = inspect_archive(root)
    assert report.status == "interrupted" and report.units_incomplete == [1]
    text = " ".join(_render(report).split())
    assert "unit(s) 1 started but never finished" in text and "Re-run the same `biomedica ingest`" in text


def test_units_completed_after_finalize_make_the_manifest_stale(tmp_path, write_unit):
    root = tmp_path / "archive"
    write_unit(root, 0)
    finalize_archive(root, {}, {})
    write_unit(root, 1)
    report = inspect_archive(root)
    assert report.status == "stale" and "lists 1 unit(s) but _units/ holds 2" in report.advice
    finalize_archive(root, {}, {})
    assert inspect_archive(root).status == "complete"


def test_many_years_are_folded():
    from biomedica.cli.inspect import _years_for_display

    rows = _years_for_display({str(y): 1 for y in range(1990, 2020)} | {"unknown": 4})
    assert rows[0] == ("1990–2004", 15) and rows[1] == ("2005", 1) and rows[-1] == ("unknown", 4)
    assert len(rows) == 17


def test_shards_without_markers_are_never_counted(two_unit_archive):
    shutil.rmtree(two_unit_archive / "_units")
    (two_unit_archive / "manifest.json").unlink()
    report = inspect_archive(two_unit_archive)
    assert report.status == "interrupted" and report.units_incomplete == [0, 1] and report.total_samples == 0


def test_verify_flags_a_damaged_shard(two_unit_archive):
    assert inspect_archive(two_unit_archive, verify=True).status == "complete"
    assert "verify: every file matches" in _render(inspect_archive(two_unit_archive, verify=True))
    tar = two_unit_archive / "other" / "000000.tar"
    data = bytearray(tar.read_bytes())
    data[700] ^= 0x01
    tar.write_bytes(bytes(data))
    report = inspect_archive(two_unit_archive, verify=True)
    assert report.status == "damaged" and [p.kind for p in report.problems] == ["checksum-mismatch"]
    text = " ".join(_render(report).split())
    assert "status: damaged" in text and "checksum-mismatch" in text
    assert inspect_archive(two_unit_archive).status == "complete"  # no verify: not read


def test_crash_inside_the_first_unit_is_interrupted_not_foreign(tmp_path, make_figure):
    from biomedica.archive import UnitWriter

    root = tmp_path / "archive"
    writer = UnitWriter(root, 0)
    writer.add_sample(make_figure("PMC1_000"), b"\xff\xd8partial", "jpg")  # no commit: the process "died"
    report = inspect_archive(root)
    assert report.status == "interrupted" and report.units_incomplete == [0]
    assert report.total_samples == 0 and report.example is None
    writer.abort()
    assert inspect_archive(root).status == "not-archive"
