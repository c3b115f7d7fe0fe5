"""Checking an archive against its unit markers: every file present, sizes and shard checksums equal.

The markers record each published file's size and each shard's sha256 at write time, so
a copy (rsync, hub upload/download, a disk fault) can be verified without the source.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.units import completed_units
from biomedica.io.digest import file_sha256
from biomedica.records import ErrorRecord

VERIFY_STAGE = "verify"


def verify_archive(root: Path, checksums: bool = True) -> list[ErrorRecord]:
    """Problems found in the archive at `root` (empty list: it matches its markers).

    Checks, per complete unit: each listed file exists with the recorded size; each shard's
    sha256 (skipped with `checksums=False`, which reads no tar); each shard index has one
    row per sample; and each group's sizes.json agrees with the markers.
    """
    root = Path(root)
    layout = ArchiveLayout(root)
    problems: list[ErrorRecord] = []

    def problem(id_: str, kind: str, message: str, path: Path) -> None:
        problems.append(ErrorRecord(id=id_, stage=VERIFY_STAGE, kind=kind, message=message, source=str(path)))

    redo = "delete its marker _units/{:06d}.json and re-run the build to rewrite unit {}"
    expected_sizes: dict[str, dict[str, int]] = {}
    for unit_id, stats in completed_units(root).items():
        fix = redo.format(unit_id, unit_id)
        for name, size in stats.files.items():
            path = root / name
            if not path.is_file():
                problem(name, "missing-file", f"{path} is listed by unit {unit_id} but missing; {fix}", path)
            elif path.stat().st_size != size:
                problem(name, "size-mismatch",
                        f"{path} has {path.stat().st_size} bytes, its unit recorded {size}; {fix}", path)
        for group, shard in stats.shards.items():
            expected_sizes.setdefault(group, {})[shard.name] = shard.samples
            tar = layout.group_dir(group) / shard.name
            if not tar.is_file():
                continue  # already reported as missing
            if checksums and file_sha256(tar) != shard.sha256:
                problem(f"{group}/{shard.name}", "checksum-mismatch",
                        f"{tar} does not have the sha256 its unit recorded (damaged copy?); {fix}", tar)
            index = tar.with_suffix(".parquet")
            if index.is_file() and pq.ParquetFile(index).metadata.num_rows != shard.samples:
                problem(f"{group}/{shard.name}", "index-mismatch",
                        f"{index} does not hold one row per sample of {tar.name}; {fix}", index)
    for group, wanted in expected_sizes.items():
        path = layout.sizes(group)
        found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if found != wanted:
            problem(group, "sizes-stale",
                    f"{path} does not match the unit markers; run the build again (or finalize) to rewrite it",
                    path)
    return problems
