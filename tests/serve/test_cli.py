"""`biomedica serve`: refusals in one line (exit 1), the unindexed-units warning, the URL, /annotate mounted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import biomedica
from biomedica.cli import app
from biomedica.cli.serve import compose_app
from biomedica.serve.config import ServeConfig
from biomedica.testing.web import free_port

SRC = Path(biomedica.__file__).resolve().parents[1]


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_missing_index_and_empty_archive_say_what_to_run(search_archive, tmp_path):
    result = CliRunner().invoke(app, ["serve", str(search_archive), "--index", str(tmp_path / "noindex")])
    assert result.exit_code == 1
    assert f"biomedica index {search_archive}" in _one_line(result)
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "biomedica ingest" in _one_line(result)
    result = CliRunner().invoke(app, ["serve", str(search_archive), "--embedding", "nope"])
    assert result.exit_code == 1 and "nope" in _one_line(result)



@pytest.mark.slow
def test_serve_warns_about_unindexed_units_and_prints_its_url(demo_corpus, tmp_path):
    """Index an archive, append units with a later ingest, then serve: one warning line, the URL, keyword works."""
    from biomedica.index.build import build_index
    from biomedica.index.config import IndexConfig
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    first = tmp_path / "first"
    first.mkdir()
    for article in sorted(demo_corpus.iterdir())[:4]:
        shutil.copytree(article, first / article.name)
    archive = tmp_path / "archive"
    run_ingest(IngestConfig(input=first, output=archive, workers=1, articles_per_unit=4, progress=False))
    build_index(IndexConfig(archive=archive), None)
    run_ingest(IngestConfig(input=demo_corpus, output=archive, workers=1, articles_per_unit=4, progress=False))

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen([sys.executable, "-m", "biomedica.cli", "serve", str(archive), "--port", str(port)],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not any("http://" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stderr.readline())
        warnings = [line for line in lines if line.startswith("warning:")]
        assert len(warnings) == 1 and "not indexed" in warnings[0] and f"biomedica index {archive}" in warnings[0]
        assert f"http://127.0.0.1:{port}/" in lines[-1] and "keyword only" in lines[-1]
        body = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": "image"}, timeout=30)
        assert body.status_code == 200 and body.json()["total"] > 0
        semantic = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": "image", "mode": "semantic"},
                             timeout=30)
        assert semantic.status_code == 400
        assert semantic.json()["detail"] == "no embeddings indexed; run biomedica curate embed + biomedica index"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_annotation_app_is_mounted_when_clusters_exist(search_archive):
    served, mounted = compose_app(ServeConfig(archive=search_archive))
    assert mounted
    with TestClient(served) as client:
        assert client.get("/api/info").json()["annotate"] is True
        page = client.get("/annotate/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        queue = client.get("/annotate/api/queue", params={"annotator": "ann1"})
        assert queue.status_code == 200 and queue.json()["total"] > 0
        key = client.get("/api/search", params={"q": "image"}).json()["results"][0]["key"]
        thumb = client.get(f"/annotate/api/image/{key}", params={"size": "thumb"})
        assert thumb.status_code == 200 and thumb.content == client.get(f"/api/image/{key}?size=thumb").content
        # the search app's guard covers the mounted app: cross-site writes refused there too
        refused = client.post("/annotate/api/labels", json={"annotator": "a", "cluster": 0},
                              headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403
