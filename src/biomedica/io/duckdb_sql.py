"""DuckDB helpers every stage shares: quoting paths into SQL, and a sorted COPY to Parquet in bounded memory.

Why one place: file paths are pasted into `read_parquet(...)` and `COPY ... TO`, and a path
holding a quote must not end the literal; and a COPY over millions of rows must spill to disk
under a memory limit, then appear whole or not at all (io.atomic).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from biomedica.io.atomic import atomic_path
from biomedica.io.memory import duckdb_memory


def sql_string(value: str | Path) -> str:
    """`value` as a quoted SQL string literal ('' for a quote inside)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Iterable[str | Path]) -> str:
    """A SQL list literal of strings: `['a', 'b']`, what read_parquet takes for several files."""
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


def copy_to_parquet(query: str, target: Path, *, memory: str | int, spill: Path, row_group_rows: int | None = None) -> None:
    """Write the rows of `query` to `target` (zstd Parquet, in the query's order) atomically, DuckDB holding at
    most `memory` (io.memory sizes) and spilling to `spill` (a folder of the caller's run, which removes it)."""
    import duckdb

    connection = duckdb.connect(config={"memory_limit": duckdb_memory(memory), "temp_directory": str(Path(spill) / "duckdb"),
                                        "preserve_insertion_order": True})
    options = "FORMAT parquet, COMPRESSION zstd" + (f", ROW_GROUP_SIZE {row_group_rows}" if row_group_rows else "")
    try:
        with atomic_path(target) as tmp:
            connection.execute(f"COPY ({query}) TO {sql_string(tmp)} ({options})")
    finally:
        connection.close()
