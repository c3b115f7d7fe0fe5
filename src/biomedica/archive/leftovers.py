"""Temporaries that killed or overlapping runs left in an archive, and removing them.

Every writer names its temporaries with `io.atomic.temp_path` (`.NAME.tmp-<pid>-<serial>-<hex>`),
so a leftover is recognised by that pattern and its writer by the pid in it. A resumed unit
removes its own unit's temporaries (`clean_unit`), but others outlive a successful rerun: a
unit finished by another run, sizes.json or manifest.json of a finalize that was killed, a
half-made lock file. Nothing else is ever removed.
"""

from __future__ import annotations

from pathlib import Path

from biomedica.archive.annotations import ANNOTATIONS_DIR
from biomedica.archive.enrichment import ENRICHMENT_DIR
from biomedica.archive.layout import ARTICLES_DIR, ERRORS_DIR, UNITS_DIR
from biomedica.io.atomic import remove_stale_temporaries
from biomedica.records import LICENSE_GROUPS

# Folders the archive's writers (ingest, sync, enrich, curate) write directly; "builds" and
# "retractions" are ingest.sync's BUILDS_DIR / RETRACTIONS_DIR (a stage cannot be imported here).
WRITTEN_DIRS: tuple[str, ...] = (
    *LICENSE_GROUPS, UNITS_DIR, ARTICLES_DIR, ERRORS_DIR, ANNOTATIONS_DIR, ENRICHMENT_DIR, "builds", "retractions",
)


def remove_leftovers(root: Path) -> list[Path]:
    """Remove the temporaries of writers that are gone from the archive at `root`; return what was removed.

    Call it while holding the archive's exclusive lock (not a job-array task's shared one: a
    sibling task on another host writes there too, and its pid means nothing on this one).
    """
    root = Path(root)
    removed = remove_stale_temporaries(root)
    for name in WRITTEN_DIRS:
        removed += remove_stale_temporaries(root / name)
    return removed
