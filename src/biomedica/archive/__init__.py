"""The archive: WebDataset shards per license group, their Parquet indexes, manifest, errors.

Format in two sentences: inside a shard, the files sharing a basename (`PMC123_000.jpg`,
`.txt`, `.json`) form one sample, and each `<group>/NNNNNN.tar` has a `NNNNNN.parquet`
beside it with one row per sample (the figure record plus the byte offset and size of each
member), so a sample can be found by SQL and read with one seek. Shards are numbered by
work unit with six digits inside one folder per license group (`commercial/`,
`noncommercial/`, `other/`), so brace patterns such as `commercial/{000000..000041}.tar`
expand to them, and `sizes.json` gives OpenCLIP the sample count of each.

Writing happens per work unit (`UnitWriter`), all-or-nothing: files appear under their
final names only when complete, and `_units/NNNNNN.json` marks the unit done; `finalize_archive`
then derives `sizes.json` and `manifest.json` from the markers.
"""

from biomedica.archive.inspect import InspectReport, SampleSummary, inspect_archive, render_report
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.manifest import finalize_archive, read_manifest
from biomedica.archive.reader import iter_samples, iter_shard, read_member, read_shard_index, shard_paths
from biomedica.archive.unit_writer import UnitWriter
from biomedica.archive.units import (
    CorruptMarker,
    ShardInfo,
    UnitAlreadyComplete,
    UnitStats,
    clean_unit,
    completed_units,
    incomplete_units,
    is_unit_complete,
)
from biomedica.archive.verify import verify_archive

__all__ = [
    "ArchiveLayout",
    "CorruptMarker",
    "InspectReport",
    "SampleSummary",
    "ShardInfo",
    "UnitAlreadyComplete",
    "UnitStats",
    "UnitWriter",
    "clean_unit",
    "completed_units",
    "finalize_archive",
    "incomplete_units",
    "inspect_archive",
    "is_unit_complete",
    "iter_samples",
    "iter_shard",
    "read_manifest",
    "read_member",
    "read_shard_index",
    "render_report",
    "shard_paths",
    "verify_archive",
]
