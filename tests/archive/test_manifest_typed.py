"""The typed Manifest: a round trip of what finalize writes, and clear refusals."""

import json

import pytest

from biomedica.archive import Manifest, ManifestError, read_manifest
from biomedica.archive.manifest import brace_pattern


def test_typed_manifest_round_trips_what_finalize_wrote(two_unit_archive):
    raw = read_manifest(two_unit_archive)
    manifest = Manifest.read(two_unit_archive)
    assert manifest.to_dict() == raw
    assert Manifest.from_bytes(json.dumps(raw).encode()) == manifest
    assert manifest.totals.samples == 8 and manifest.totals.errors == 1 and manifest.units == (0, 1)
    assert manifest.groups["commercial"].shard_pattern == "commercial/{000000..000001}.tar"
    assert [(s.path, s.unit, s.samples) for s in manifest.shards(["other", "commercial"])] == [
        ("other/000000.tar", 0, 2), ("commercial/000000.tar", 0, 3), ("commercial/000001.tar", 1, 2)]
    assert sum(s.samples for s in manifest.shards()) == manifest.totals.samples
    assert all(len(s.sha256) == 64 for s in manifest.shards())


def test_unreadable_manifests_are_refused_with_the_file_named(two_unit_archive, tmp_path):
    raw = read_manifest(two_unit_archive)
    with pytest.raises(ManifestError, match=r"m.json: schema_version 2.0 is not readable .* rebuild the archive"):
        Manifest.from_dict({**raw, "schema_version": "2.0"}, "m.json")
    assert Manifest.from_dict({**raw, "schema_version": "1.7"}).schema_version == "1.7"  # same major: readable
    with pytest.raises(ManifestError, match="not a biomedica archive manifest"):
        Manifest.from_dict({**raw, "format": "webdataset"})
    with pytest.raises(ManifestError, match="malformed manifest .*totals"):
        Manifest.from_dict({k: v for k, v in raw.items() if k != "totals"})
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_bytes(b"{oops")
    assert Manifest.read(tmp_path) is None  # never finalized


def test_brace_pattern_is_public():
    assert brace_pattern("commercial", ["000003.tar", "000004.tar"]) == "commercial/{000003..000004}.tar"
    assert brace_pattern("out", ["000001.tar"]) == "out/000001.tar"


def test_a_local_manifest_is_read_and_refused_like_a_remote_one(two_unit_archive):
    from typer.testing import CliRunner

    from biomedica.archive import inspect_archive
    from biomedica.cli import app

    assert inspect_archive(two_unit_archive).finalized_at == Manifest.read(two_unit_archive).finalized_at
    path = two_unit_archive / "manifest.json"
    raw = json.loads(path.read_text())
    path.write_text("{oops")
    with pytest.raises(ManifestError, match=rf"{path}: not valid JSON .* finalize it"):
        Manifest.read(two_unit_archive)
    path.write_text(json.dumps({**raw, "schema_version": "2.0"}))
    with pytest.raises(ManifestError, match="schema_version 2.0 is not readable"):
        inspect_archive(two_unit_archive)
    result = CliRunner().invoke(app, ["inspect", str(two_unit_archive)])
    assert result.exit_code == 2 and "schema_version 2.0 is not readable" in " ".join(result.output.split())
