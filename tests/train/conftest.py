"""Fixtures for training tests: a real HTTP server on 127.0.0.1, small synthetic shards, a demo archive."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerOptions:
    """Behaviour of the test server, changeable while it runs."""

    token: str | None = None  # required as "Bearer <token>" when set
    honour_ranges: bool = True
    drop_after: int | None = None  # cut the first response of each path after this many bytes
    redirect_to: str | None = None  # 302 every request to this base URL (+ path)
    requests: list[dict] = field(default_factory=list)
    _dropped: set[str] = field(default_factory=set)


def _make_handler(root: Path, options: ServerOptions):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802 - http.server naming
            options.requests.append({"path": self.path, "headers": dict(self.headers)})
            if options.redirect_to:
                self.send_response(302)
                self.send_header("Location", options.redirect_to.rstrip("/") + self.path)
                self.end_headers()
                return
            if options.token and self.headers.get("Authorization") != f"Bearer {options.token}":
                self.send_error(401)
                return
            path = root / self.path.split("?")[0].lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            ranged = self.headers.get("Range")
            if ranged and options.honour_ranges:
                start = int(ranged.split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if options.drop_after is not None and self.path not in options._dropped:
                options._dropped.add(self.path)
                self.wfile.write(body[: options.drop_after])
                self.wfile.flush()
                self.connection.shutdown(2)  # the client sees a short read
                return
            self.wfile.write(body)

    return Handler


@dataclass
class RunningServer:
    url: str
    options: ServerOptions

    def shard_requests(self) -> list[dict]:
        return [r for r in self.options.requests if r["path"].endswith(".tar")]


@pytest.fixture
def serve():
    """Start HTTP servers on 127.0.0.1 serving a folder: `serve(root, token=...)` -> RunningServer."""
    servers = []

    def start(root: Path, **kwargs) -> RunningServer:
        options = ServerOptions(**kwargs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(Path(root), options))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return RunningServer(f"http://127.0.0.1:{server.server_address[1]}", options)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def write_shards(folder: Path, prefix: str, shard_sizes: list[int], color: tuple[int, int, int], caption: str) -> list[Path]:
    """Tars of `KEY.png` (a solid `color` image), `KEY.txt`, `KEY.json` plus `sizes.json`, like the archive."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    png = buffer.getvalue()
    paths, sizes = [], {}
    for index, size in enumerate(shard_sizes):
        path = folder / f"{index:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for n in range(size):
                key = f"{prefix}{index:03d}_{n:03d}"
                for ext, data in (("png", png), ("txt", f"{caption} {n}".encode()), ("json", json.dumps({"key": key}).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        sizes[path.name] = size
        paths.append(path)
    (folder / "sizes.json").write_text(json.dumps(sizes), encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def train_demo_archive(tmp_path_factory) -> Path:
    """A 40-article demo corpus ingested into an archive with one shard per license group.

    Few, larger shards keep the tests quick: OpenCLIP fills a 1,000-sample shuffle buffer
    at the start of every epoch, and each shard opened over HTTP costs a helper process.
    """
    from biomedica.demo.corpus import DemoCorpusConfig, write_demo_corpus
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    base = tmp_path_factory.mktemp("train-demo")
    write_demo_corpus(base / "corpus", DemoCorpusConfig(n_articles=40, seed=0))
    run_ingest(IngestConfig(input=base / "corpus", output=base / "archive", workers=1, articles_per_unit=40, progress=False))
    return base / "archive"


def tiny_config(run_root: Path, sources: list[dict], **overrides) -> dict:
    """A config mapping for the tiny CPU model; `overrides` replace top-level sections."""
    config = {
        "name": "tiny",
        "output_dir": str(run_root),
        "device": "cpu",
        "cpu_threads": 1,
        "model": {"name": "biomedica-tiny", "precision": "fp32"},
        "data": {"sources": sources, "workers": 1, "seed": 0},
        "optim": {"lr": 1e-3, "warmup": 2, "batch_size": 16, "weight_decay": 0.1},
        "schedule": {"total_steps": 4, "checkpoint_every_steps": 2},
        "logging": {"report_to": [], "log_every_steps": 1},
    }
    config.update(overrides)
    return config
