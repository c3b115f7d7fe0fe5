"""SQL over the archive and its annotations (DuckDB): the views, and the selection query.

Views every query can use:

| view | rows |
|---|---|
| `samples` | every live shard-index row of complete units (figure record + member offsets) + `group` |
| `all_samples` | `samples` plus the superseded copies (`superseded.parquet`) still in the tars |
| `dedup`, `quality`, `panels`, `clusters`, `concepts`, `labels` | the annotation tables present |
| `subfigures` | one row per panel (`curate subfigures`), when present; not joined into `annotated` |
| `annotated` | `samples` LEFT JOINed with every per-sample annotation table on `key` |
| `concept_view` | `annotated` + `concept` (the id the strategies use) + `concept_score` |
| `held_out` | keys of the samples whose article (`archive.keys.sample_article`) the eval split holds out |
| `wanted_keys` | with `--keys`: the keys of the key manifest (`register_keys`), with their position in it |

Only the shards of complete units are read (the file list comes from the unit markers),
so a half-written build is never selected from.

`--unit subfigure`: the filters pick figures as before (they apply to the parent figure, so
`--panel-type` still works), then each chosen figure is joined with its rows of `subfigures`:
one result row per panel, with `subfigure_panel`, `subfigure_x0` .. `subfigure_y1`,
`subfigure_label`, `subfigure_score`, `subfigure_method`, `subfigure_subcaption`; `--limit`
counts panels.

`--where` is raw DuckDB SQL, and DuckDB SQL can read and write files (`read_text`, `COPY`,
`ATTACH`). So the connection is sandboxed once its views exist (`sandbox`): external access
off except the archive's and the annotations' folders, configuration locked so SQL cannot
turn it back on, and a query holding user SQL must be exactly one SELECT statement
(`check_single_select`), which rules out COPY/ATTACH and a second statement. User SQL is
for the local command line only: no server passes a request's text into these queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from biomedica.archive.annotations import PANEL_TABLES, TABLE_NAMES, AnnotationStore, default_annotations_dir
from biomedica.archive.reader import shard_paths
from biomedica.archive.split import HeldOutSplit, is_held_out
from biomedica.archive.superseded import read_superseded
from biomedica.io.duckdb_sql import sql_string
from biomedica.io.memory import duckdb_memory
from biomedica.select.config import SelectConfig


def connect(archive: Path, annotations: Path | None = None, held_out: HeldOutSplit | None = None,
            memory: str | None = None, spill: Path | None = None):
    """A DuckDB connection with the views of the module docstring; returns (connection, tables present).

    `held_out` fills the `held_out` table (empty without a split or when it is off). `memory`
    (io.memory sizes) caps DuckDB, which spills sorts and joins beyond it to `spill`.
    """
    import duckdb

    archive = Path(archive)
    paths = shard_paths(archive)
    if not paths:
        raise FileNotFoundError(f"{archive}: no complete shards to select from; build the archive with `biomedica ingest`")
    settings = {} if memory is None else {"memory_limit": duckdb_memory(memory)}
    if spill is not None:
        settings["temp_directory"] = str(spill)
    connection = duckdb.connect(config=settings)
    index_files = ", ".join(sql_string(str(tar.with_suffix(".parquet"))) for _, tar in paths)
    superseded = read_superseded(archive).select(["group", "shard", "key"])
    connection.register("superseded_samples", superseded)
    connection.execute(
        f"CREATE VIEW all_samples AS SELECT * EXCLUDE (filename), "
        f"split_part(replace(filename, '\\', '/'), '/', -2) AS \"group\" "
        f"FROM read_parquet([{index_files}], filename = true, union_by_name = true)"
    )
    # the archive's content: older or duplicate copies of an article (archive.superseded) are left out
    connection.execute(
        "CREATE VIEW samples AS SELECT * FROM all_samples s WHERE NOT EXISTS (SELECT 1 FROM superseded_samples x "
        "WHERE x.\"group\" = s.\"group\" AND x.shard = s.shard AND x.key = s.key)"
    )
    store = AnnotationStore(Path(annotations) if annotations else default_annotations_dir(archive))
    present = [name for name in TABLE_NAMES if store.has(name)]
    joins = []
    for name in present:
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_string(str(store.table_path(name)))})")
        if name not in PANEL_TABLES:  # one row per panel: joined only by a --unit subfigure query
            joins.append(f"LEFT JOIN {name} USING (key)")
    connection.execute(f"CREATE VIEW annotated AS SELECT * FROM samples {' '.join(joins)}")
    _create_held_out(connection, held_out or HeldOutSplit(0.0))
    sandbox(connection, [archive, store.root])
    return connection, present


def sandbox(connection, readable: Iterable[Path]) -> None:
    """Let the connection open files only below `readable`, and lock that setting (see the module docstring)."""
    folders: set[str] = set()
    for folder in readable:
        for form in (Path(folder).absolute(), Path(folder).resolve()):
            folders.add(str(form).rstrip("/\\") + "/")
    listed = ", ".join(sql_string(f) for f in sorted(folders))
    connection.execute(f"SET allowed_directories = [{listed}]")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def check_single_select(sql: str, where: str) -> None:
    """Refuse a query that is not exactly one SELECT: `where` must not close the query and start another."""
    import duckdb

    hint = f"check --where {where!r}"
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValueError(f"selection query failed ({hint}): {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ValueError(f"--where must be one SQL condition, not further statements ({hint})")


def _create_held_out(connection, split: HeldOutSplit) -> None:
    """The `held_out` table: hash each article once (its PMCID, else the article part of the key; '' is no PMCID)."""
    held_articles: list[str] = []
    held_keys: list[str] = []
    if split.enabled:
        # streamed in batches: only the held-out ids stay in Python (6M articles at PMC scale)
        sql = "SELECT DISTINCT pmcid FROM samples WHERE NULLIF(pmcid, '') IS NOT NULL"
        held_articles = [a for a in _column_values(connection, sql) if is_held_out(a, split.fraction, split.salt)]
        orphans = _column_values(connection, "SELECT key FROM samples WHERE NULLIF(pmcid, '') IS NULL")
        held_keys = [k for k in orphans if split.holds(k)]
    connection.register("held_out_articles", pa.table({"pmcid": pa.array(held_articles, pa.string())}))
    connection.register("held_out_orphans", pa.table({"key": pa.array(held_keys, pa.string())}))
    connection.execute(
        "CREATE TABLE held_out AS SELECT key FROM samples WHERE pmcid IN (SELECT pmcid FROM held_out_articles) "
        "UNION ALL SELECT key FROM held_out_orphans"
    )


def record_batches(connection, sql: str, parameters: list | None = None, rows: int = 65_536) -> pa.RecordBatchReader:
    """The result of `sql` as a stream of Arrow batches of about `rows` rows (DuckDB 2's relation reader;
    `fetch_arrow_reader` before): what reads a result of any size in bounded memory."""
    relation = connection.sql(sql, params=parameters or None)
    return relation.to_arrow_reader(rows) if hasattr(relation, "to_arrow_reader") else relation.fetch_arrow_reader(rows)


def _column_values(connection, sql: str, rows: int = 65_536) -> Iterator[Any]:
    """The first column of `sql`, batch by batch."""
    for batch in record_batches(connection, sql, rows=rows):
        yield from batch.column(0).to_pylist()


def register_keys(connection, keys: list[str]) -> list[str]:
    """Fill `wanted_keys` (duplicates once, first position kept); returns the keys no live sample has, in order."""
    unique = list(dict.fromkeys(keys))
    connection.register("wanted_keys", pa.table({"key": pa.array(unique, pa.string()),
                                                 "position": pa.array(range(len(unique)), pa.int64())}))
    sql = "SELECT key FROM wanted_keys WHERE key NOT IN (SELECT key FROM samples) ORDER BY position"
    return fetch_arrow(connection, sql).column(0).to_pylist()


def fetch_arrow(connection, sql: str, parameters: list | None = None):
    """The result of `sql` as an Arrow table (relation API of DuckDB 2; `fetch_arrow_table` before)."""
    relation = connection.sql(sql, params=parameters or None)
    if hasattr(relation, "to_arrow_table"):
        return relation.to_arrow_table()
    return relation.arrow()


@dataclass
class SelectionQuery:
    """The SQL that picks the subset, with its parameters and the filters that were applied."""

    sql: str
    parameters: list = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    held_out_sql: str | None = None  # counts the held-out samples that pass every other filter
    held_out_parameters: list = field(default_factory=list)
    unmatched_sql: str | None = None  # --unit subfigure: counts the chosen figures that have no subfigure rows
    unmatched_parameters: list = field(default_factory=list)
    order: list[str] = field(default_factory=lambda: ["group", "shard", "key"])  # the ORDER BY columns of `sql`

    def projected(self, columns: list[str]) -> str:
        """`sql` reduced to `columns` (plus its order columns), in its order: what a streamed manifest reads, so
        DuckDB sorts only those columns (it drops the others before the sort)."""
        names = ", ".join(f'"{c}"' for c in dict.fromkeys([*columns, *self.order]))
        order = ", ".join(f'"{c}"' for c in self.order)
        return f"SELECT {names} FROM ({self.sql}) AS selected ORDER BY {order}"


def _concept_expression(config: SelectConfig, present: list[str]) -> tuple[str, str]:
    """(concept id SQL, score SQL) from the chosen label source, NULL when unlabelled."""
    level = config.concept_level
    labels = f"label_{level}[1]" if "labels" in present else "NULL"
    zeroshot_id = f"zs_{level}" if "concepts" in present else "NULL"
    zeroshot_score = f"zs_{level}_score" if "concepts" in present else "NULL"
    if config.min_concept_score is not None and "concepts" in present:
        zeroshot_id = f"CASE WHEN {zeroshot_score} >= {float(config.min_concept_score)} THEN {zeroshot_id} END"
    if config.concept_source == "labels":
        return labels, "CASE WHEN " + labels + " IS NOT NULL THEN 1.0 END"
    if config.concept_source == "zeroshot":
        return zeroshot_id, zeroshot_score
    return (f"COALESCE({labels}, {zeroshot_id})",
            f"CASE WHEN {labels} IS NOT NULL THEN 1.0 ELSE {zeroshot_score} END")


def build_query(config: SelectConfig, present: list[str]) -> SelectionQuery:
    """The selection SQL for `config` over the views `present`; refuses filters whose table is missing."""
    def need(table: str, option: str) -> None:
        if table not in present:
            raise ValueError(
                f"{option} needs annotations/{table}.parquet, which is missing; run `biomedica curate "
                f"{'label' if table == 'labels' else table}` first"
            )

    conditions: list[str] = []
    parameters: list = []
    applied: list[str] = []
    if config.keys is not None:
        conditions.append("key IN (SELECT key FROM wanted_keys)")
        applied.append(f"keys listed in {config.keys}")
    if config.license_groups:
        conditions.append(f"\"group\" IN ({', '.join('?' for _ in config.license_groups)})")
        parameters += list(config.license_groups)
        applied.append(f"license group in {config.license_groups}")
    if config.min_year is not None:
        conditions.append("year >= ?")
        parameters.append(config.min_year)
        applied.append(f"year >= {config.min_year}")
    if config.max_year is not None:
        conditions.append("year <= ?")
        parameters.append(config.max_year)
        applied.append(f"year <= {config.max_year}")
    if config.journals:
        conditions.append(f"journal IN ({', '.join('?' for _ in config.journals)})")
        parameters += list(config.journals)
        applied.append(f"journal in {config.journals}")
    if config.canonical_only:
        need("dedup", "--canonical-only")
        conditions.append("COALESCE(canonical, TRUE)")
        applied.append("canonical samples only")
    held_out_condition = "key NOT IN (SELECT key FROM held_out)"
    if config.held_out.enabled:
        conditions.append(held_out_condition)
        applied.append(f"held-out eval articles excluded (fraction {config.held_out_fraction:g})")
    if config.exclude_leaks and "dedup" in present:
        conditions.append("NOT COALESCE(leak, FALSE)")
        applied.append("no eval-set leaks")
    if config.drop_flags:
        need("quality", "--drop-flag")
        if "any" in config.drop_flags:
            conditions.append("COALESCE(quality_ok, TRUE)")
        else:
            conditions.append("NOT list_has_any(COALESCE(flags, []::VARCHAR[]), ?::VARCHAR[])")
            parameters.append(list(config.drop_flags))
        applied.append(f"quality flags dropped: {config.drop_flags}")
    if config.unit == "subfigure" and "subfigures" not in present:
        raise ValueError(
            f"--unit subfigure needs annotations/subfigures.parquet, which is missing; run "
            f"`biomedica curate subfigures {config.archive}` first"
        )
    if config.panel_types:
        need("panels", "--panel-type")
        conditions.append(f"panel_type IN ({', '.join('?' for _ in config.panel_types)})")
        parameters += list(config.panel_types)
        applied.append(f"panel type in {config.panel_types}")
    concept_sql, score_sql = "NULL", "NULL"
    uses_concepts = config.strategy != "all" or config.include_concepts or config.exclude_concepts
    if uses_concepts:
        if "labels" not in present and "concepts" not in present:
            raise ValueError(
                "concept strategies need annotations/labels.parquet (expert labels: `biomedica annotate` then export) "
                "or annotations/concepts.parquet (`biomedica curate zeroshot`)"
            )
        concept_sql, score_sql = _concept_expression(config, present)
    if config.include_concepts:
        conditions.append(f"concept IN ({', '.join('?' for _ in config.include_concepts)})")
        parameters += list(config.include_concepts)
        applied.append(f"concepts kept: {config.include_concepts}")
    if config.exclude_concepts:
        conditions.append(f"(concept IS NULL OR concept NOT IN ({', '.join('?' for _ in config.exclude_concepts)}))")
        parameters += list(config.exclude_concepts)
        applied.append(f"concepts dropped: {config.exclude_concepts}")
    if config.where:
        conditions.append(f"({config.where})")
        applied.append(f"where {config.where}")
    where_sql = " AND ".join(conditions) or "TRUE"
    concept_view = (
        f"WITH concept_view AS (SELECT *, {concept_sql} AS concept, {score_sql} AS concept_score FROM annotated)"
    )
    held_out_sql = None
    if config.held_out.enabled:
        others = [c for c in conditions if c != held_out_condition]
        held_out_sql = (f"{concept_view} SELECT count(*) FROM concept_view WHERE "
                        + " AND ".join([*others, "key IN (SELECT key FROM held_out)"]))
    where_parameters = list(parameters)
    base = f"{concept_view}, filtered AS (SELECT * FROM concept_view WHERE {where_sql})"
    if config.strategy == "concept-balanced":
        # deterministic "random" order per seed; unlabelled samples form their own capped partition
        base += (
            ", ranked AS (SELECT *, row_number() OVER (PARTITION BY COALESCE(concept, '<unlabelled>') "
            "ORDER BY hash(key || ?), key) AS concept_rank FROM filtered) "
        )
        parameters.append(str(config.seed))
        chosen = "SELECT * EXCLUDE (concept_rank) FROM ranked WHERE concept_rank <= ?"
        parameters.append(config.cap_per_concept)
        applied.append(f"at most {config.cap_per_concept} per {config.concept_level} concept")
    else:
        chosen = "SELECT * FROM filtered"
    unmatched_sql = None
    order = ["group", "shard", "key"]
    if config.unit == "subfigure":
        base += f", chosen AS ({chosen})"
        unmatched_sql = base + " SELECT count(*) FROM chosen WHERE key NOT IN (SELECT key FROM subfigures)"
        sql = (base + " SELECT chosen.*, sf.panel AS subfigure_panel, sf.x0 AS subfigure_x0, sf.y0 AS subfigure_y0, "
               "sf.x1 AS subfigure_x1, sf.y1 AS subfigure_y1, sf.label AS subfigure_label, sf.score AS subfigure_score, "
               "sf.method AS subfigure_method, sf.subcaption AS subfigure_subcaption "
               "FROM chosen JOIN subfigures sf ON sf.key = chosen.key ORDER BY \"group\", shard, key, subfigure_panel")
        order.append("subfigure_panel")  # as in the ORDER BY above
        applied.append("one sample per panel (annotations/subfigures.parquet)")
    else:
        sql = f"{base} {chosen} ORDER BY \"group\", shard, key"
    if config.limit:
        sql += f" LIMIT {int(config.limit)}"
        applied.append(f"first {config.limit}")
    if config.where:
        for text in (sql, held_out_sql, unmatched_sql):
            if text is not None:
                check_single_select(text, config.where)
    return SelectionQuery(sql=sql, parameters=parameters, applied=applied, held_out_sql=held_out_sql,
                          held_out_parameters=where_parameters, unmatched_sql=unmatched_sql,
                          unmatched_parameters=list(parameters), order=order)
