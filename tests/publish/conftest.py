"""Fixtures of the publish tests: a published demo archive, and a tiny Hugging Face hub on 127.0.0.1: the part of the hub API huggingface_hub's upload_folder uses.

It records every call (method, path, Authorization header) and keeps committed files in memory.
Every file is answered `uploadMode: regular` (inline base64 in the commit), so no LFS/Xet storage
server is needed; the remote `oid` (git blob sha1) of a file already committed lets the client skip it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeHub:
    calls: list[tuple[str, str]] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)
    repos: dict[str, dict] = field(default_factory=dict)  # repo id -> {"private", "branches": {name: {path: bytes}}}
    commits: int = 0
    validated: list = field(default_factory=list)  # front matter of each README.md checked by /api/validate-yaml
    url: str = ""


def start_hub() -> tuple[ThreadingHTTPServer, FakeHub]:
    hub = FakeHub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _record(self) -> None:
            hub.calls.append((self.command, self.path.split("?")[0]))
            if self.headers.get("Authorization"):
                hub.auth.add(self.headers["Authorization"])

        def do_GET(self) -> None:
            self._record()
            m = re.match(r"^/api/datasets/([^/]+/[^/]+)/revision/([^/?]+)", self.path)
            if m and m.group(1) in hub.repos:
                return self._reply(200, {"id": m.group(1), "sha": "0" * 40, "siblings": [], "private": False})
            self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            self._record()
            body = self._body()
            path = self.path.split("?")[0]
            if path == "/api/repos/create":
                request = json.loads(body)
                repo_id = f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
                private = bool(request.get("private")) or request.get("visibility") == "private"
                hub.repos.setdefault(repo_id, {"private": private, "branches": {"main": {}}})
                return self._reply(200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})
            if path == "/api/validate-yaml":  # the README's front matter must parse
                content = json.loads(body)["content"]
                try:
                    front = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else {}
                except yaml.YAMLError as exc:
                    return self._reply(400, {"errors": [{"message": str(exc)}]})
                hub.validated.append(front)
                return self._reply(200, {"errors": [], "warnings": []})
            m = re.match(r"^/api/datasets/([^/]+/[^/]+)/(branch|preupload|commit)/(.+)$", path)
            if not m or m.group(1) not in hub.repos:
                return self._reply(404, {"error": "Repository not found"})
            repo = hub.repos[m.group(1)]
            kind, revision = m.group(2), m.group(3)
            if kind == "branch":
                repo["branches"].setdefault(revision, dict(repo["branches"]["main"]))
                return self._reply(200, {})
            files = repo["branches"].setdefault(revision, {})
            if kind == "preupload":
                answer = []
                for f in json.loads(body)["files"]:
                    entry = {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    if f["path"] in files:
                        entry["oid"] = git_blob_sha1(files[f["path"]])
                    answer.append(entry)
                return self._reply(200, {"files": answer})
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] != "header":
                    return self._reply(400, {"error": f"unsupported operation {item['key']}"})
            hub.commits += 1
            oid = hashlib.sha1(str(hub.commits).encode()).hexdigest()
            return self._reply(200, {"commitUrl": f"{hub.url}/datasets/{m.group(1)}/commit/{oid}", "commitOid": oid})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hub


@pytest.fixture
def hub():
    """A FakeHub serving on 127.0.0.1 (hub.url), stopped after the test."""
    server, state = start_hub()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def publish_annotations(demo_archive, tmp_path_factory) -> Path:
    """An annotation folder for the demo archive: a quality table over every sample (other group included,
    nulls in it) and embeddings `tiny` in curate embed's format (per shard: keys .parquet + float16 .npy)."""
    root = tmp_path_factory.mktemp("publish-annotations")
    keys, flags = [], []
    rng = np.random.default_rng(0)
    folder = root / "embeddings" / "tiny"
    folder.mkdir(parents=True)
    for index in sorted(demo_archive.glob("*/[0-9]*.parquet")):
        shard_keys = pq.read_table(index, columns=["key"]).column("key").to_pylist()
        stem = f"{index.parent.name}-{index.stem}"
        for kind in ("image", "text"):
            np.save(folder / f"{stem}.{kind}.npy", rng.standard_normal((len(shard_keys), 8)).astype(np.float16))
        pq.write_table(pa.table({"key": pa.array(shard_keys, pa.string())}), folder / f"{stem}.keys.parquet")
        keys += shard_keys
        flags += [None if i % 3 == 0 else f"flag{i % 2}" for i in range(len(shard_keys))]
    pq.write_table(pa.table({"key": pa.array(keys, pa.string()), "reason": pa.array(flags, pa.string()),
                             "low_quality": pa.array([f is not None for f in flags])}), root / "quality.parquet")
    return root
