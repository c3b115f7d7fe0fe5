"""Read PMC's legacy OA file lists (`oa_file_list.csv` and `.txt`) into typed rows.

Both real formats list one article package per row:

- `.csv`: header `File,Article Citation,Accession ID,Last Updated (YYYY-MM-DD HH:MM:SS),PMID,License`
  (copies cut from the full list may lack the header), comma-separated with quoted fields,
  bare PMIDs, often CRLF line ends; a copy re-saved by Excel has dates like `06-04-20 14:56`.
- `.txt`: a first line holding the list's own date (`2023-01-20 10:09:53`), then
  tab-separated rows `File  Citation  Accession  PMID  License`, the PMID written `PMID:123`.

PMIDs may be empty; licenses are short codes (`CC BY`, `CC0`, `CC BY-NC-SA`, `NO-CC CODE`)
that map onto the archive's license groups, so a run can pre-select packages by group
before downloading anything. A row that cannot be read is kept as a problem with its line
number, never a crash.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from biomedica.licenses import normalize_license

CSV_HEADER_FIRST_FIELD = "File"
_PMCID = re.compile(r"^PMC\d+$")
_PMID = re.compile(r"^(?:PMID:)?\s*(\d+)$", re.IGNORECASE)
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}(?::\d{2})?)?$")
# Excel's re-save of the date column: DD-MM-YY HH:MM or MM-DD-YY HH:MM (two-digit parts)
_EXCEL_DATETIME = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


@dataclass(frozen=True)
class OaFileEntry:
    """One package row: where the package lies (relative to the PMC base) and what it holds."""

    package_path: str  # e.g. "oa_package/08/e0/PMC13900.tar.gz"
    pmcid: str
    citation: str | None = None
    pmid: str | None = None
    license_code: str | None = None  # as the list writes it: "CC BY", "NO-CC CODE", ...
    last_updated: str | None = None  # ISO 8601 when the list's date could be read
    line: int = 0  # 1-based line number in the list, for messages

    @property
    def package_name(self) -> str:
        return PurePosixPath(self.package_path).name

    @property
    def license_group(self) -> str:
        """commercial | noncommercial | other, from the list's license code (the XML decides later)."""
        return normalize_license(text=self.license_code).group if self.license_code else "other"


@dataclass
class OaFileList:
    """All readable rows of one list, the list's own date (.txt), and the rows that were not readable."""

    path: str
    format: str  # "csv" | "txt"
    entries: list[OaFileEntry] = field(default_factory=list)
    snapshot: str | None = None  # the .txt first line (ISO 8601), None for csv
    problems: list[str] = field(default_factory=list)  # "line N: what is wrong"

    def by_pmcid(self) -> dict[str, OaFileEntry]:
        return {entry.pmcid: entry for entry in self.entries}


class OaFileListError(ValueError):
    """The file is not an OA file list at all (wrong file, HTML error page, empty download)."""


def read_oa_file_list(path: Path | str) -> OaFileList:
    """Read an `oa_file_list.csv` or `.txt` from disk (format detected from the content)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OaFileListError(f"cannot read OA file list {path}: {exc.strerror or exc}; check the path") from exc
    return parse_oa_file_list(data, str(path))


def parse_oa_file_list(data: bytes | str, name: str = "<oa_file_list>") -> OaFileList:
    """Parse the bytes of an OA file list; `name` is used in messages."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise OaFileListError(f"{name}: the OA file list is empty; download oa_file_list.csv or .txt again")
    if first.lstrip().startswith("<"):
        raise OaFileListError(
            f"{name}: this is HTML/XML, not an OA file list (an error page saved as the list?); "
            "download oa_file_list.csv or .txt again"
        )
    if "\t" in text[:4096] and not first.startswith(CSV_HEADER_FIRST_FIELD + ","):
        return _parse_txt(lines, name)
    return _parse_csv(text, name)


def _parse_txt(lines: list[str], name: str) -> OaFileList:
    result = OaFileList(path=name, format="txt")
    start = 0
    if lines and "\t" not in lines[0]:
        result.snapshot = _iso_date(lines[0].strip(), day_first=None)
        if result.snapshot is None:
            result.problems.append(f"line 1: {lines[0].strip()!r} is not the list's date (YYYY-MM-DD HH:MM:SS)")
        start = 1
    rows = [(number, line.split("\t")) for number, line in enumerate(lines[start:], start=start + 1) if line.strip()]
    _add_rows(result, rows, has_date_column=False)
    return result


def _parse_csv(text: str, name: str) -> OaFileList:
    result = OaFileList(path=name, format="csv")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    if rows and rows[0][1] and rows[0][1][0].strip() == CSV_HEADER_FIRST_FIELD:
        rows = rows[1:]
    _add_rows(result, rows, has_date_column=True)
    return result


def _add_rows(result: OaFileList, rows: list[tuple[int, list[str]]], has_date_column: bool) -> None:
    expected = 6 if has_date_column else 5
    day_first = _excel_day_first([row[3] for _, row in rows if len(row) == expected]) if has_date_column else None
    for line, row in rows:
        cells = [cell.strip() for cell in row]
        if len(cells) != expected:
            result.problems.append(
                f"line {line}: {len(cells)} fields, expected {expected} "
                f"({'File,Citation,Accession,Last Updated,PMID,License' if has_date_column else 'File, Citation, Accession, PMID, License'})"
            )
            continue
        if has_date_column:
            package, citation, accession, updated, pmid, license_code = cells
        else:
            package, citation, accession, pmid, license_code = cells
            updated = ""
        if not _PMCID.match(accession):
            result.problems.append(f"line {line}: accession {accession!r} is not a PMCID (PMC followed by digits)")
            continue
        if not package.lower().endswith((".tar.gz", ".tgz")):
            result.problems.append(f"line {line}: file {package!r} is not a .tar.gz package")
            continue
        pmid_match = _PMID.match(pmid) if pmid else None
        if pmid and pmid_match is None:
            result.problems.append(f"line {line}: PMID {pmid!r} is not a number; the row is kept without PMID")
        last_updated = _iso_date(updated, day_first) if updated else None
        if updated and last_updated is None:
            result.problems.append(f"line {line}: date {updated!r} is not readable; the row is kept without it")
        result.entries.append(
            OaFileEntry(
                package_path=package,
                pmcid=accession,
                citation=citation or None,
                pmid=pmid_match.group(1) if pmid_match else None,
                license_code=license_code or None,
                last_updated=last_updated,
                line=line,
            )
        )


def _excel_day_first(dates: list[str]) -> bool | None:
    """Decide the day/month order of a list's Excel-mangled dates from the list as a whole.

    A first part above 12 proves day-first (European locale), a second part above 12
    proves month-first; if nothing proves either, day-first is assumed (the real mangled
    list is day-first). None when no date is in Excel form.
    """
    firsts, seconds = [], []
    for value in dates:
        match = _EXCEL_DATETIME.match(value.strip())
        if match:
            firsts.append(int(match.group(1)))
            seconds.append(int(match.group(2)))
    if not firsts:
        return None
    if any(n > 12 for n in seconds) and not any(n > 12 for n in firsts):
        return False
    return True


def _iso_date(value: str, day_first: bool | None) -> str | None:
    """ISO 8601 `YYYY-MM-DDTHH:MM:SS` (or a date) from the list's format or Excel's re-save."""
    value = value.strip()
    if _ISO_DATETIME.match(value):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
            try:
                return datetime.strptime(value, fmt).isoformat()
            except ValueError:
                continue
        return None
    match = _EXCEL_DATETIME.match(value)
    if match is None:
        return None
    a, b, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
    day, month = (a, b) if day_first is not False else (b, a)
    if year < 100:
        year += 2000  # the OA lists start in the 2000s
    try:
        stamp = datetime(year, month, day, int(match.group(4) or 0), int(match.group(5) or 0), int(match.group(6) or 0))
    except ValueError:
        return None
    return stamp.isoformat()
