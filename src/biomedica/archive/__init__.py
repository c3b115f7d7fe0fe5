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
then derives `sizes.json` and `manifest.json` (typed: `Manifest`) from the markers.

This package is the only code that knows these file names. Readers find shards by the
markers (`reader.shard_paths`) or, remotely, by the `Manifest`; sample keys follow `keys`.
Side tables sit beside the shards: `annotations` (curation tables), `labels` (expert cluster
labels), `enrichment` (PubMed), `selection` (the subset manifest select writes and train
reads), `errors` (every stage's failures); `split` is the held-out eval split.
"""

from typing import TYPE_CHECKING

from biomedica.lazy import lazy_exports

# Public names and the module that defines each. Imported on first use (PEP 562) so that a
# light module such as `biomedica.archive.keys` (used by the stdlib-only pipe helper) does
# not pull pyarrow in with the package.
_EXPORTS = {
    "ArchiveLayout": "layout",
    "CorruptMarker": "units",
    "ErrorSink": "errors",
    "HeldOutSplit": "split",
    "InspectReport": "inspect",
    "SampleSummary": "inspect",
    "ShardInfo": "units",
    "UnitAlreadyComplete": "units",
    "UnitStats": "units",
    "UnitWriter": "unit_writer",
    "clean_unit": "units",
    "completed_units": "units",
    "finalize_archive": "manifest",
    "incomplete_units": "units",
    "inspect_archive": "inspect",
    "is_archive": "reader",
    "is_held_out": "split",
    "is_unit_complete": "units",
    "iter_samples": "reader",
    "iter_shard": "reader",
    "live_shards": "reader",
    "read_builds": "builds",
    "superseded_keys": "superseded",
    "read_errors": "errors",
    "Manifest": "manifest",
    "ManifestError": "manifest",
    "read_manifest": "manifest",
    "read_member": "reader",
    "read_shard_index": "reader",
    "render_report": "inspect",
    "shard_paths": "reader",
    "verify_archive": "verify",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from biomedica.archive.builds import read_builds
    from biomedica.archive.errors import ErrorSink, read_errors
    from biomedica.archive.superseded import superseded_keys
    from biomedica.archive.inspect import InspectReport, SampleSummary, inspect_archive, render_report
    from biomedica.archive.layout import ArchiveLayout
    from biomedica.archive.manifest import Manifest, ManifestError, finalize_archive, read_manifest
    from biomedica.archive.reader import (
        is_archive,
        iter_samples,
        iter_shard,
        live_shards,
        read_member,
        read_shard_index,
        shard_paths,
    )
    from biomedica.archive.split import HeldOutSplit, is_held_out
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
