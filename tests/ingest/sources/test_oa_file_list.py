"""OA file lists: both real formats (csv with/without header, tab .txt), Excel dates, empty PMIDs."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from biomedica.ingest.sources.oa_file_list import OaFileListError, parse_oa_file_list, read_oa_file_list


@pytest.fixture(scope="module")
def lists_dir(fixtures_dir) -> Path:
    return fixtures_dir / "oa_file_list"


def test_excel_resaved_csv_with_header_and_crlf(lists_dir):
    listing = read_oa_file_list(lists_dir / "oa_file_list_covid4_excel.csv")
    assert listing.format == "csv" and listing.problems == []
    assert [e.pmcid for e in listing.entries] == ["PMC7112410", "PMC7135076", "PMC7159286", "PMC7159299"]
    first = listing.entries[0]
    assert first.package_path == "oa_package/ac/6a/PMC7112410.tar.gz"
    assert first.package_name == "PMC7112410.tar.gz"
    assert first.citation == "Lancet. 2003 May 24; 361(9371):1767-1772"
    assert first.pmid == "12781535"
    assert first.license_code == "NO-CC CODE" and first.license_group == "other"
    # "18-06-20 12:56" can only be day-first, so the whole list is read day-first
    assert [e.last_updated for e in listing.entries] == [
        "2020-04-06T14:56:00",
        "2020-06-18T12:56:00",
        "2021-01-15T17:16:00",
        "2021-01-15T17:16:00",
    ]
    assert first.line == 2  # the header is line 1


def test_headerless_csv_empty_pmids_and_license_groups(lists_dir):
    listing = read_oa_file_list(lists_dir / "oa_file_list_sample_noheader.csv")
    assert listing.problems == []
    assert len(listing.entries) == 115
    assert Counter(e.license_code for e in listing.entries) == {"NO-CC CODE": 60, "CC BY": 40, "CC0": 15}
    assert Counter(e.license_group for e in listing.entries) == {"other": 60, "commercial": 55}
    no_pmid = [e for e in listing.entries if e.pmid is None]
    assert len(no_pmid) == 21
    assert no_pmid[0].pmcid == "PMC176547" and no_pmid[0].line == 63
    assert listing.entries[0].last_updated == "2019-11-05T11:56:12"
    assert listing.by_pmcid()["PMC13900"].pmid == "11250746"


def _as_txt(csv_path: Path) -> str:
    """The same rows in the .txt format: list date first, tab-separated, `PMID:` prefix, no date column."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    lines = ["2024-01-18 09:28:04"]
    for file, citation, accession, _updated, pmid, license_code in rows:
        lines.append("\t".join([file, citation, accession, f"PMID:{pmid}" if pmid else "", license_code]))
    return "\n".join(lines) + "\n"


def test_txt_format_gives_the_same_rows(lists_dir):
    source = lists_dir / "oa_file_list_sample_noheader.csv"
    from_csv = read_oa_file_list(source)
    from_txt = parse_oa_file_list(_as_txt(source).encode(), "oa_file_list.txt")
    assert from_txt.format == "txt" and from_txt.problems == []
    assert from_txt.snapshot == "2024-01-18T09:28:04"
    strip = lambda e: (e.package_path, e.pmcid, e.citation, e.pmid, e.license_code)  # noqa: E731
    assert [strip(e) for e in from_txt.entries] == [strip(e) for e in from_csv.entries]
    assert all(e.last_updated is None for e in from_txt.entries)
    assert from_txt.entries[0].line == 2


def test_bad_rows_are_reported_with_line_numbers_not_fatal():
    text = (
        "File,Article Citation,Accession ID,Last Updated (YYYY-MM-DD HH:MM:SS),PMID,License\r\n"
        "oa_package/08/e0/PMC13900.tar.gz,Breast Cancer Res. 2001,PMC13900,2019-11-05 11:56:12,11250746,CC BY\r\n"
        "oa_package/08/e0/PMC1.tar.gz,too few fields,PMC1\r\n"
        "oa_package/08/e0/X.tar.gz,\"Quoted, citation\",NOTPMC,2019-11-05 11:56:12,,CC0\r\n"
        "oa_package/08/e0/PMC2.tar.gz,\"Quoted, citation\",PMC2,yesterday,abc,CC BY-NC\r\n"
    )
    listing = parse_oa_file_list(text.encode())
    assert [e.pmcid for e in listing.entries] == ["PMC13900", "PMC2"]
    assert listing.entries[1].citation == "Quoted, citation"
    assert listing.entries[1].pmid is None and listing.entries[1].last_updated is None
    assert listing.entries[1].license_group == "noncommercial"
    assert [p.split(":")[0] for p in listing.problems] == ["line 3", "line 4", "line 5", "line 5"]
    assert "expected 6" in listing.problems[0]
    assert "not a PMCID" in listing.problems[1]


def test_month_first_excel_dates_are_recognised():
    text = (
        "oa_package/00/00/PMC1.tar.gz,c,PMC1,04-06-20 14:56,1,CC BY\n"
        "oa_package/00/00/PMC2.tar.gz,c,PMC2,06-18-20 12:56,2,CC BY\n"
    )
    listing = parse_oa_file_list(text)
    assert [e.last_updated for e in listing.entries] == ["2020-04-06T14:56:00", "2020-06-18T12:56:00"]


def test_html_error_page_or_empty_file_is_refused_with_a_fix(tmp_path):
    with pytest.raises(OaFileListError, match="not an OA file list"):
        parse_oa_file_list(b"<html><body>503 Service Unavailable</body></html>", "oa_file_list.csv")
    with pytest.raises(OaFileListError, match="empty"):
        parse_oa_file_list(b"\n\n", "oa_file_list.csv")
    with pytest.raises(OaFileListError, match="check the path"):
        read_oa_file_list(tmp_path / "missing.csv")
