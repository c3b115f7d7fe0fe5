"""`select --where` is raw DuckDB SQL: it runs sandboxed (no files outside the archive, one SELECT)."""

import pytest
from typer.testing import CliRunner

from biomedica.select import SelectConfig, run_select
from biomedica.select.query import connect, fetch_arrow


def _select(curated, out, where):
    archive, annotations = curated
    return run_select(SelectConfig(archive=archive, annotations=annotations, out=out, where=where))


def test_where_filters_still_work(curated, tmp_path):
    assert _select(curated, tmp_path / "a", "year >= 2020").selected > 0
    assert _select(curated, tmp_path / "b", "caption ILIKE '%ultrasound%'").selected > 0
    # the archive's own files stay readable (the views read them lazily, after the lock-down)
    assert _select(curated, tmp_path / "c", "key IN (SELECT key FROM samples)").selected > 0


@pytest.mark.parametrize("where", [
    "length(read_text('/etc/passwd')) > 0",
    "(SELECT count(*) FROM read_text('/etc/passwd')) > 0",
    "(SELECT count(*) FROM read_csv('/etc/hostname')) > 0",
])
def test_where_cannot_read_files_outside_the_archive(curated, tmp_path, where):
    with pytest.raises(ValueError, match="check --where") as caught:
        _select(curated, tmp_path / "out", where)
    assert "\n" not in str(caught.value) and "root:" not in str(caught.value)


def test_where_cannot_write_files(curated, tmp_path):
    target = tmp_path / "leak.csv"
    inside = curated[0] / "leak.csv"
    for where in (
        f"TRUE); COPY (SELECT 42) TO '{target}'; SELECT * FROM samples WHERE (TRUE",
        f"TRUE); COPY (SELECT 42) TO '{inside}'; SELECT * FROM samples WHERE (TRUE",
        f"TRUE); ATTACH '{inside}.duckdb' AS x; SELECT * FROM samples WHERE (TRUE",
        "TRUE); SET enable_external_access = true; SELECT * FROM samples WHERE (TRUE",
    ):
        with pytest.raises(ValueError, match="--where") as caught:
            _select(curated, tmp_path / "out", where)
        assert "\n" not in str(caught.value)
    assert not target.exists() and not inside.exists() and not (curated[0] / "leak.csv.duckdb").exists()


def test_connection_is_locked(curated):
    import duckdb

    connection, _ = connect(*curated)
    assert fetch_arrow(connection, "SELECT count(*) AS n FROM samples").column(0)[0].as_py() > 0
    with pytest.raises(duckdb.Error, match="locked"):
        connection.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.PermissionException):
        connection.execute("SELECT * FROM read_text('/etc/passwd')")


def test_cli_refuses_file_access_in_one_line(curated, tmp_path):
    import typer

    from biomedica.cli.select import select

    app = typer.Typer()
    app.command()(select)
    app.command("noop")(lambda: None)
    archive, annotations = curated
    result = CliRunner().invoke(app, ["select", str(archive), "--out", str(tmp_path / "o"), "--annotations",
                                      str(annotations), "--where", "(SELECT count(*) FROM read_text('/etc/passwd')) > 0"])
    assert result.exit_code != 0 and "Traceback" not in result.output and "root:" not in result.output
    assert "archive's own files" in " ".join(result.output.split())
