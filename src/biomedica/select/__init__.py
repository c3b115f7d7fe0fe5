"""Training subsets: SQL (DuckDB) over the archive and its annotations, written as a manifest or shards.

`run_select(SelectConfig(...))` applies the filters (the keys of a key manifest, licence
group, year, journal, duplicates, quality flags, panel type, concepts, free SQL), then a strategy: `all`,
`concept-filtered` (drop chosen concepts, e.g. plots and tables) or `concept-balanced`
(at most N samples per concept, deterministic for a seed). Output: `manifest.parquet`
(shard URL + key, streamable with `manifest_key_filter`) or new shards with `sizes.json`: byte
copies, training-ready resized copies (`image_size`), or panel crops, written by one planned,
parallel (`workers`), resumable step (`select.shards`, `select-plan.json`). Held-out eval
articles are left out unless `exclude_held_out=False`.
"""

from biomedica.archive.selection import manifest_key_filter, read_manifest_keys
from biomedica.select.config import SelectConfig
from biomedica.select.run import SelectionExists, SelectResult, run_select

__all__ = ["SelectConfig", "SelectResult", "SelectionExists", "manifest_key_filter", "read_manifest_keys", "run_select"]
