"""The docs table: one row per indexed sample, doc id = row number, everything a result list shows.

Doc ids are dense and assigned in unit order (then license group, then shard row), never
reused, so the table is the concatenation of its parts (`docs/NNNN.arrow`, one per index
run; uncompressed Arrow IPC, memory-mapped by readers) and `row(doc)` is a slice. Every sample of a unit gets a doc id, superseded copies
included (they are masked by `live`), so ids do not depend on when supersession was seen.
A sample is found in the archive by (group, shard, key): keys repeat across copies. The rows
carry every member offset, so serve's export writes a select manifest without reading the
archive's shard index (from index format 2; an older format is refused with "delete the folder").
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.units import UnitStats
from biomedica.records import LICENSE_GROUPS
from biomedica.search.layout import IndexLayout

BATCH_ROWS = 1 << 16  # rows per record batch of a docs part
CAPTION_CHARS = 500  # the docs table keeps the caption's start, for result lists; the full text is in the shard

DOCS_SCHEMA = pa.schema([
    ("doc", pa.int64()),
    ("key", pa.string()),
    ("pmcid", pa.string()),
    ("group", pa.string()),
    ("shard", pa.string()),
    ("unit", pa.int64()),
    ("image_offset", pa.int64()),
    ("image_size", pa.int64()),
    ("image_format", pa.string()),
    ("txt_offset", pa.int64()),  # with the other offsets: an export builds its select manifest from this table
    ("txt_size", pa.int64()),
    ("json_offset", pa.int64()),
    ("json_size", pa.int64()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("license", pa.string()),
    ("license_group", pa.string()),
    ("year", pa.int32()),
    ("journal", pa.string()),
    ("article_type", pa.string()),
    ("has_mentions", pa.bool_()),
    ("fig_label", pa.string()),
    ("caption_title", pa.string()),
    ("caption", pa.string()),
    ("article_title", pa.string()),
    ("doi", pa.string()),
])

# What the keyword index reads from a shard beyond the docs columns (full text).
TEXT_COLUMNS = ["caption", "caption_title", "mentions", "article_title", "keywords"]
_SHARD_COLUMNS = sorted({f.name for f in DOCS_SCHEMA} - {"doc", "group", "unit", "has_mentions"} | set(TEXT_COLUMNS))


def unit_samples(archive: Path, unit_id: int, stats: UnitStats) -> pa.Table:
    """Every sample row of one unit (superseded copies too), groups in LICENSE_GROUPS order, shard row order.

    Columns: the docs columns less `doc`, plus the full text columns (caption untruncated, mentions, keywords).
    """
    layout = ArchiveLayout(Path(archive))
    tables = []
    for group in LICENSE_GROUPS:
        if group not in stats.shards:
            continue
        path = layout.group_dir(group) / stats.shards[group].name.replace(".tar", ".parquet")
        table = pq.read_table(path, columns=_SHARD_COLUMNS)
        n = table.num_rows
        table = table.append_column("group", pa.array([group] * n, pa.string()))
        table = table.append_column("unit", pa.array([unit_id] * n, pa.int64()))
        tables.append(table)
    if not tables:
        return pa.schema([DOCS_SCHEMA.field(c) for c in _SHARD_COLUMNS if c in DOCS_SCHEMA.names]).empty_table()
    return pa.concat_tables(tables, promote_options="default")


def docs_part(samples: pa.Table, first_doc: int) -> pa.Table:
    """The DOCS_SCHEMA rows of `samples` (from unit_samples), doc ids from `first_doc`."""
    n = samples.num_rows
    mentions = samples.column("mentions")
    has_mentions = pc.fill_null(pc.greater(pc.list_value_length(mentions), 0), False)
    caption = pc.utf8_slice_codeunits(pc.fill_null(samples.column("caption"), ""), 0, CAPTION_CHARS)
    columns = {
        "doc": pa.array(range(first_doc, first_doc + n), pa.int64()),
        "has_mentions": has_mentions,
        "caption": caption,
    }
    arrays = [columns[f.name] if f.name in columns else samples.column(f.name).cast(f.type) for f in DOCS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=DOCS_SCHEMA)


def write_docs_part(layout: IndexLayout, batch: int, part: pa.Table) -> None:
    """Publish the docs rows one index run added as an uncompressed Arrow IPC file (atomically).

    Uncompressed so a reader memory-maps it: opening costs no decoding and no memory, and only
    the pages a query touches (its result rows) become resident; zstd Parquet had to be decoded
    whole at open (2 s and ~1 GB per 1M docs). Record batches of BATCH_ROWS keep every string
    column's 32-bit offsets in range however many docs one run adds.
    """
    from biomedica.io.atomic import atomic_path

    part = part.cast(DOCS_SCHEMA)
    with atomic_path(layout.docs_part(batch)) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
            pa.ipc.new_file(sink, DOCS_SCHEMA) as writer:
        writer.write_table(part, max_chunksize=BATCH_ROWS)


def map_ipc(path: Path) -> pa.Table:
    """An Arrow IPC file as a table whose buffers are the memory-mapped file (zero-copy: nothing is read yet)."""
    with pa.memory_map(str(path)) as source:  # the table's buffers keep the mapping alive after close
        return pa.ipc.open_file(source).read_all()


def part_rows(path: Path) -> int:
    """Rows in one docs part (from its footer and batch headers; the data is not read)."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).count_rows()


def write_key_order(layout: IndexLayout, docs: pa.Table) -> None:
    """Doc ids sorted by key (stable: copies of a key in doc order), published atomically as .npy.

    So a reader's first doc_of is a binary search over a mapped file, not a sort of every key
    (seconds and 8 bytes per doc at open-time scale); written by each run that adds docs.
    """
    import numpy as np

    from biomedica.io.atomic import atomic_open

    order = np.asarray(pc.sort_indices(docs.column("key")).to_numpy(), np.int64) if docs.num_rows else np.zeros(0, np.int64)
    with atomic_open(layout.key_order) as handle:
        np.save(handle, order, allow_pickle=False)


def read_key_order(layout: IndexLayout, size: int):
    """The first `size` docs' key order (memory-mapped), None when the file is missing or covers fewer docs."""
    import numpy as np

    try:
        order = np.load(layout.key_order, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if order.ndim != 1 or order.dtype != np.int64 or len(order) < size:
        return None
    return order if len(order) == size else order[order < size]  # docs of a run that died before its state.json


def read_docs(layout: IndexLayout, through_batch: int | None = None) -> pa.Table:
    """The docs table: every part (up to `through_batch`), memory-mapped, in doc order; checked dense.

    Concatenating parts is zero-copy (one chunk per record batch), so this costs milliseconds
    and no memory at any size.
    """
    parts = [p for b, p in layout.docs_parts() if through_batch is None or b <= through_batch]
    if not parts:
        return DOCS_SCHEMA.empty_table()
    try:
        tables = [map_ipc(p) for p in parts]
    except (OSError, pa.ArrowInvalid) as exc:
        raise ValueError(f"{layout.docs_dir}: a docs part is unreadable ({type(exc).__name__}); "
                         f"delete {layout.root} and run `biomedica index` again") from None
    if any(not t.schema.equals(DOCS_SCHEMA) for t in tables):
        raise ValueError(f"{layout.docs_dir}: a docs part has another schema; delete {layout.root} and run "
                         "`biomedica index` again")
    table = pa.concat_tables(tables)
    docs = table.column("doc")
    if table.num_rows and (docs[0].as_py() != 0 or docs[-1].as_py() != table.num_rows - 1):
        raise ValueError(f"{layout.docs_dir}: doc ids are not dense; delete {layout.root} and run `biomedica index` again")
    return table
