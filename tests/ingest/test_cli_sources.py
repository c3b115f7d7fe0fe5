"""`biomedica ingest --source ...` from the command line: pmc-cloud (local S3) and pmc-package."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
from typer.testing import CliRunner

from biomedica.cli import app

runner = CliRunner()


def _samples(root) -> list[dict]:
    return [r for p in sorted(root.glob("*/[0-9]*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_pmc_cloud_from_the_command_line_then_incremental_sync(make_pmc_bucket, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    out = tmp_path / "archive"
    args = ["ingest", "--source", "pmc-cloud", "--bucket", bucket, "--endpoint-url", s3_server.endpoint_url,
            "--out", str(out), "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    first = _samples(out)
    assert first and len({r["key"] for r in first}) == len(first)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "pmc-cloud"

    synced = tmp_path / "synced"
    result = runner.invoke(app, [*args[:-4], str(synced), "--no-progress", "--incremental"])
    assert result.exit_code == 0, result.output
    assert sorted(r["key"] for r in _samples(synced)) == sorted(r["key"] for r in first)


def test_incremental_needs_pmc_cloud(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path), "--out", str(tmp_path / "o"), "--incremental"])
    assert result.exit_code == 2
    assert "--incremental works with --source pmc-cloud" in " ".join(result.output.split())


def test_pmc_package_mirror_from_the_command_line(fixtures_dir, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted((fixtures_dir / "pmc_packages" / "PMC10802347").iterdir()):
            if path.suffix != ".txt":
                tar.add(path, arcname=f"PMC10802347/{path.name}")
    (mirror / "PMC10802347.tar.gz").write_bytes(buffer.getvalue())
    out = tmp_path / "archive"
    result = runner.invoke(app, ["ingest", str(mirror), "--source", "pmc-package", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = _samples(out)
    assert len(rows) == 4 and {r["pmcid"] for r in rows} == {"PMC10802347"}
    assert all(r["license_group"] == "noncommercial" for r in rows)
