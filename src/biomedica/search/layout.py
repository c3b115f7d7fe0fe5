"""The index folder's file names (ARCHIVE/index/ by default): the only code that knows them.

```
state.json                 written last by each index run (what is indexed; see biomedica.index.build)
docs/NNNN.arrow            the docs table, one part per run that added docs (doc ids dense, in unit order);
                           uncompressed Arrow IPC, memory-mapped by readers
keyword/                   the tantivy index
key_order.npy              doc ids sorted by sample key (doc_of's binary search), memory-mapped by readers
filters.arrow              every filter column per doc as codes (live, licence group, year, journal, panel
                           type, concepts, cluster, ...): Arrow IPC, memory-mapped into numpy by readers
vectors/<name>/<kind>/     a VectorIndex per embedding name and kind (image | text)
.biomedica.lock            the writer's lock (biomedica.io.lock)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INDEX_DIR = "index"
SCHEMA_VERSION = 3  # 2: docs carry txt_offset/txt_size (serve's export); 3: docs and filters memory-mapped (Arrow IPC)
KINDS = ("image", "text")


def default_index_dir(archive: Path) -> Path:
    return Path(archive) / INDEX_DIR


@dataclass(frozen=True)
class IndexLayout:
    """Paths inside one index folder."""

    root: Path

    @property
    def state(self) -> Path:
        return Path(self.root) / "state.json"

    @property
    def docs_dir(self) -> Path:
        return Path(self.root) / "docs"

    def docs_part(self, batch: int) -> Path:
        return self.docs_dir / f"{batch:04d}.arrow"

    def docs_parts(self) -> list[tuple[int, Path]]:
        """(batch, path) of every docs part present, batch ascending."""
        if not self.docs_dir.is_dir():
            return []
        found = [(int(p.stem), p) for p in self.docs_dir.glob("*.arrow") if p.stem.isdigit()]
        return sorted(found)

    @property
    def key_order(self) -> Path:
        return Path(self.root) / "key_order.npy"

    @property
    def keyword(self) -> Path:
        return Path(self.root) / "keyword"

    @property
    def filters(self) -> Path:
        return Path(self.root) / "filters.arrow"

    def vectors(self, name: str, kind: str) -> Path:
        return Path(self.root) / "vectors" / name / kind
