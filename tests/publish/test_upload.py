"""publish --to ORG/NAME against a local hub (HF_ENDPOINT): the calls huggingface_hub makes, the files it
commits, a rerun that commits nothing, and the token: only from HF_TOKEN, never printed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytest.importorskip("huggingface_hub")

from biomedica.cli import app

TOKEN = "hf_test_secret_token_0123456789"


@pytest.fixture
def hub_env(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no login cache of this machine
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    return hub


def test_upload_creates_the_repo_commits_every_file_and_resumes(demo_archive, hub_env, tmp_path, monkeypatch):
    hub = hub_env
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    staging = tmp_path / "staging"
    args = ["publish", str(demo_archive), "--to", "org/biomedica-demo", "--staging", str(staging), "--no-progress",
            "--private"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output and "from HF_TOKEN" in result.output
    assert hub.auth == {f"Bearer {TOKEN}"}
    kinds = [(method, path.split("/")[-2] if path.startswith("/api/datasets/") else path) for method, path in hub.calls]
    assert ("POST", "/api/repos/create") in kinds and ("POST", "/api/validate-yaml") in kinds
    assert [c["config_name"] for c in hub.validated[0]["configs"]][:1] == ["commercial"]
    assert ("POST", "preupload") in kinds and kinds[-1] == ("POST", "commit")
    repo = hub.repos["org/biomedica-demo"]
    assert repo["private"]
    files = repo["branches"]["main"]
    laid = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()
                  and ".cache" not in p.parts)
    assert sorted(files) == sorted(f for f in laid if f != ".biomedica-publish.json")
    for name, data in files.items():
        assert (staging / name).read_bytes() == data
    assert "README.md" in files and any(n.endswith(".tar") for n in files)

    commits = hub.commits
    again = CliRunner().invoke(app, args)  # a rerun (or a resumed upload): the hub holds every file already
    assert again.exit_code == 0, again.output
    assert hub.commits == commits


def test_upload_to_a_branch(demo_archive, hub_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["publish", str(demo_archive), "--to", "hf://datasets/org/b", "--revision", "v1",
                                      "--staging", str(tmp_path / "s"), "--no-progress", "--no-annotations"])
    assert result.exit_code == 0, result.output
    assert ("POST", "/api/datasets/org/b/branch/v1") in hub_env.calls
    assert "README.md" in hub_env.repos["org/b"]["branches"]["v1"]


def test_no_token_is_refused_before_anything_is_written(demo_archive, hub_env, tmp_path):
    result = CliRunner().invoke(app, ["publish", str(demo_archive), "--to", "org/x", "--staging", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "no Hugging Face token" in result.output and "HF_TOKEN" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s").exists() and hub_env.calls == []


def test_upload_patterns_select_exactly_the_laid_out_files(tmp_path):
    """A folder whose files are all listed becomes one `DIR/*` pattern; a stray file keeps its folder listed
    name by name; huggingface_hub's own filter picks exactly the listed files."""
    from huggingface_hub.utils import filter_repo_objects

    from biomedica.publish.upload import upload_patterns

    listed = ["README.md", "manifest.json", *(f"commercial/{i:06d}.tar" for i in range(50)),
              "noncommercial/000000.tar", "embeddings/v/commercial-000000.parquet"]
    for rel in [*listed, "noncommercial/.000001.tar.tmp-1", "stale.json", "embeddings/v/sub/x.parquet"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    patterns = upload_patterns(tmp_path, listed)
    assert "commercial/*" in patterns and not any(p.startswith("commercial/0") for p in patterns)
    assert "noncommercial/000000.tar" in patterns and "embeddings/v/commercial-000000.parquet" in patterns
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert sorted(filter_repo_objects(on_disk, allow_patterns=patterns)) == sorted(listed)
