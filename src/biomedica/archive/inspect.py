"""`biomedica inspect`: what an archive holds (counts by license, year, journal, format, errors).

Errors come from `errors/` of every stage (`archive.errors.read_errors`): ingest's parts of
complete units, and the `<stage>-<part>.parquet` files of curate, enrich and later stages.

Counts come from the shard indexes and unit markers (Parquet column reads), never from
the tars, so inspecting a large archive is fast. The report also says plainly when the
folder is not an archive, or is an interrupted or not-yet-finalized build, and what to do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biomedica.archive.errors import read_errors
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.manifest import Manifest
from biomedica.archive.reader import read_shard_index, shard_paths
from biomedica.archive.superseded import read_superseded
from biomedica.archive.units import completed_units, incomplete_units
from biomedica.archive.verify import verify_archive
from biomedica.records import ErrorRecord

INGEST_STAGE = "ingest"
STATUS_COMPLETE = "complete"
STATUS_INTERRUPTED = "interrupted"  # units started but not finished, or never finalized
STATUS_STALE = "stale"  # units completed after the manifest was written
STATUS_NOT_ARCHIVE = "not-archive"
STATUS_DAMAGED = "damaged"  # verify found files that differ from what their unit recorded

_INDEX_COLUMNS = ["license_group", "year", "journal", "image_format"]
_CAPTION_CHARS = 160


@dataclass
class SampleSummary:
    """One sample shown to the user as an example of what the archive holds."""

    key: str
    caption: str  # truncated to a readable length
    image_bytes: int
    width: int | None
    height: int | None
    license: str | None
    license_group: str | None
    mentions: int


@dataclass
class InspectReport:
    """Everything `inspect` found about an archive folder."""

    root: str
    status: str  # complete | interrupted | stale | damaged | not-archive
    advice: str | None = None  # what to do when status is not "complete"
    finalized_at: str | None = None
    units_complete: int = 0
    units_incomplete: list[int] = field(default_factory=list)
    total_articles: int = 0
    total_samples: int = 0  # every sample in the tars
    samples_superseded: int = 0  # of those, older or duplicate copies (superseded.parquet); readers skip them
    total_errors: int = 0
    total_bytes: int = 0
    samples_by_group: dict[str, int] = field(default_factory=dict)
    samples_by_year: dict[str, int] = field(default_factory=dict)  # "2021" or "unknown", ascending
    top_journals: list[tuple[str, int]] = field(default_factory=list)
    samples_by_format: dict[str, int] = field(default_factory=dict)
    errors_by_kind: dict[str, int] = field(default_factory=dict)  # ingest's, as `total_errors`
    errors_by_stage: dict[str, dict[str, int]] = field(default_factory=dict)  # every stage: {stage: {kind: n}}
    example: SampleSummary | None = None
    samples_superseded_by_reason: dict[str, int] = field(default_factory=dict)  # "changed" / "duplicate"
    verified: bool = False  # True when `problems` comes from a verify pass
    problems: list[ErrorRecord] = field(default_factory=list)

    @property
    def samples_live(self) -> int:
        """The archive's content: what biomedica readers, select and train use."""
        return self.total_samples - self.samples_superseded


def inspect_archive(root: Path, top_journals: int = 10, verify: bool = False) -> InspectReport:
    """Count what the archive at `root` holds and judge whether the build is complete.

    With `verify`, also check every file against its unit marker (sizes, shard sha256);
    this reads every tar once, so it is off by default.
    """
    root = Path(root)
    layout = ArchiveLayout(root)
    report = InspectReport(root=str(root), status=STATUS_COMPLETE)
    manifest = Manifest.read(root) if root.is_dir() else None
    started = root.is_dir() and (layout.units_dir.is_dir() or bool(layout.unit_ids_with_files()))
    if not root.is_dir() or (manifest is None and not started):
        report.status = STATUS_NOT_ARCHIVE
        report.advice = (
            f"{root} is not a biomedica archive: it has neither manifest.json nor _units/. "
            "Point inspect at the folder an ingest wrote (the one holding manifest.json), "
            "or build one with `biomedica ingest ... --out DIR`."
        )
        return report

    units = completed_units(root)
    report.units_complete = len(units)
    report.units_incomplete = incomplete_units(root)
    report.finalized_at = (manifest.finalized_at or None) if manifest else None
    _judge_status(report, manifest, sorted(units))

    report.total_articles = sum(u.articles for u in units.values())
    report.total_errors = sum(u.errors for u in units.values())
    report.total_bytes = sum(u.bytes for u in units.values())
    for stats in units.values():
        for group, count in stats.samples.items():
            report.samples_by_group[group] = report.samples_by_group.get(group, 0) + count
    report.total_samples = sum(report.samples_by_group.values())
    superseded = read_superseded(root)
    report.samples_superseded = superseded.num_rows
    report.samples_superseded_by_reason = dict(sorted(_value_counts(superseded.column("reason")).items()))
    for group, count in _value_counts(superseded.column("group")).items():
        report.samples_by_group[group] = report.samples_by_group.get(group, 0) - count  # live samples per group

    index = read_shard_index(root, columns=_INDEX_COLUMNS)
    years = _value_counts(index.column("year"))
    ordered_years = sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    report.samples_by_year = {("unknown" if y is None else str(y)): n for y, n in ordered_years}
    journals = _value_counts(index.column("journal"))
    report.top_journals = sorted(
        ((j if j is not None else "unknown", n) for j, n in journals.items()), key=lambda kv: (-kv[1], kv[0])
    )[:top_journals]
    report.samples_by_format = dict(sorted(
        ((f if f is not None else "unknown", n) for f, n in _value_counts(index.column("image_format")).items()),
        key=lambda kv: -kv[1],
    ))
    errors = read_errors(root, ingest_files=[layout.errors(unit_id) for unit_id in units], columns=["stage", "kind"])
    report.errors_by_stage = _errors_by_stage(errors)
    report.errors_by_kind = report.errors_by_stage.get(INGEST_STAGE, {})
    report.example = _first_sample(root)
    if verify:
        report.verified = True
        report.problems = verify_archive(root)
        if report.problems:
            report.status = STATUS_DAMAGED
            report.advice = (
                f"{len(report.problems)} file(s) differ from what their unit recorded (listed below). "
                "Copy them again from the source archive, or delete the named unit markers and re-run the build."
            )
    return report


def _judge_status(report: InspectReport, manifest: Manifest | None, unit_ids: list[int]) -> None:
    rerun = "Re-run the same `biomedica ingest` command: it skips complete units, redoes the rest, then finalizes."
    if report.units_incomplete:
        shown = ", ".join(str(u) for u in report.units_incomplete[:10])
        more = " ..." if len(report.units_incomplete) > 10 else ""
        report.status = STATUS_INTERRUPTED
        report.advice = (
            f"The build was interrupted: unit(s) {shown}{more} started but never finished "
            f"({len(unit_ids)} complete). Their partial files are ignored by readers. {rerun}"
        )
    elif manifest is None:
        report.status = STATUS_INTERRUPTED
        report.advice = (
            f"manifest.json is missing: {len(unit_ids)} unit(s) are complete but the build stopped "
            f"before finalizing, so sizes.json (the dataset length OpenCLIP reads) may be absent. {rerun}"
        )
    elif list(manifest.units) != unit_ids:
        report.status = STATUS_STALE
        report.advice = (
            f"manifest.json lists {len(manifest.units)} unit(s) but _units/ holds {len(unit_ids)}: "
            f"units finished after the last finalize. {rerun}"
        )


def _value_counts(column: Any) -> dict[Any, int]:
    counts: Counter[Any] = Counter()
    for item in pc.value_counts(column).to_pylist():
        counts[item["values"]] += item["counts"]
    return dict(counts)


def _errors_by_stage(errors: pa.Table) -> dict[str, dict[str, int]]:
    """{stage: {kind: count}}: ingest first, then the other stages by name; kinds by count, descending."""
    counts: dict[str, Counter[str]] = {}
    for stage, kind in zip(errors.column("stage").to_pylist(), errors.column("kind").to_pylist()):
        counts.setdefault(stage or "unknown", Counter())[kind] += 1
    stages = sorted(counts, key=lambda s: (s != INGEST_STAGE, s))
    return {s: dict(sorted(counts[s].items(), key=lambda kv: (-kv[1], kv[0] or ""))) for s in stages}


def _first_sample(root: Path) -> SampleSummary | None:
    for _, tar_path in shard_paths(root):
        table = pq.ParquetFile(tar_path.with_suffix(".parquet")).read_row_group(0).slice(0, 1)
        if table.num_rows == 0:
            continue
        row = table.to_pylist()[0]
        caption = row["caption"] or ""
        if len(caption) > _CAPTION_CHARS:
            caption = caption[: _CAPTION_CHARS - 1].rstrip() + "…"
        return SampleSummary(
            key=row["key"], caption=caption, image_bytes=row["image_size"], width=row["width"],
            height=row["height"], license=row["license"], license_group=row["license_group"],
            mentions=len(row["mentions"] or []),
        )
    return None


def __getattr__(name: str):
    if name == "render_report":  # moved to biomedica.cli.inspect; this name stays for one release
        from biomedica.cli.inspect import render_report

        return render_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
