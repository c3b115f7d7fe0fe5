"""sql_string / sql_list quote any path; copy_to_parquet writes the query's rows in order, whole or not at all."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biomedica.io.duckdb_sql import copy_to_parquet, sql_list, sql_string


def test_a_quote_in_a_path_stays_inside_the_literal(tmp_path):
    folder = tmp_path / "it's here"
    folder.mkdir()
    for name in ("a'1.parquet", "b.parquet"):
        pq.write_table(pa.table({"key": [name]}), folder / name)
    files = sql_list(sorted(folder.iterdir()))
    rows = duckdb.sql(f"SELECT key FROM read_parquet({files}) ORDER BY key").fetchall()
    assert rows == [("a'1.parquet",), ("b.parquet",)]
    assert duckdb.sql(f"SELECT {sql_string(folder)}").fetchall() == [(str(folder),)]


def test_copy_sorts_spills_under_a_limit_and_keeps_the_order(tmp_path):
    source = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"key": [f"k{i:07d}" for i in range(200_000)][::-1], "v": list(range(200_000))}), source)
    target = tmp_path / "out" / "sorted.parquet"
    target.parent.mkdir()
    copy_to_parquet(f"SELECT key, v FROM read_parquet({sql_string(source)}) ORDER BY key", target,
                    memory="64MB", spill=tmp_path / "spill", row_group_rows=50_000)
    table = pq.read_table(target)
    assert table.num_rows == 200_000 and table.column("key").to_pylist() == sorted(table.column("key").to_pylist())
    assert pq.ParquetFile(target).metadata.num_row_groups >= 4
    assert sorted(p.name for p in target.parent.iterdir()) == ["sorted.parquet"]


def test_a_failing_query_leaves_the_previous_file(tmp_path):
    target = tmp_path / "table.parquet"
    pq.write_table(pa.table({"key": ["kept"]}), target)
    with pytest.raises(duckdb.Error):
        copy_to_parquet("SELECT * FROM no_such_table", target, memory="64MB", spill=tmp_path / "spill")
    assert pq.read_table(target).column("key").to_pylist() == ["kept"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["table.parquet"]
