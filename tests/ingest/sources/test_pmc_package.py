"""Source pmc-package: real packages built from the fixtures, read from a folder and over HTTP."""

from __future__ import annotations

import functools
import io
import pickle
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.pmc_package import PackageError, PmcPackageSource, read_package_members
from biomedica.net import NetConfig, RetryPolicy

NIHPP = "nihpp-2023.12.31.573776v1"
FAST_RETRY = NetConfig(retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05))

# Rows in the real csv format. PMC10802347 is the real package's PMCID/PMID/license; the
# eLife package has no PMCID in its XML, so its row carries a placeholder accession.
FILE_LIST = (
    "File,Article Citation,Accession ID,Last Updated (YYYY-MM-DD HH:MM:SS),PMID,License\r\n"
    "oa_package/5c/1e/PMC10802347.tar.gz,bioRxiv. 2024 Jan 2;,PMC10802347,2024-01-31 18:42:00,38260464,CC BY-NC-ND\r\n"
    "oa_package/0e/53/elife-00353.tar.gz,eLife. 2012; 1:e00353,PMC9000353,19-12-12 10:00,,CC BY\r\n"
    "oa_package/7a/7a/PMC10802348.tar.gz,bioRxiv (truncated copy),PMC10802348,2024-01-31 18:42:00,,CC BY-NC-ND\r\n"
    "oa_package/7b/7b/PMC10802349.tar.gz,not in the mirror,PMC10802349,2024-01-31 18:42:00,,CC0\r\n"
)


def _tar_gz(folder: Path, top: str | None, skip=(".txt",)) -> bytes:
    """A gzip tar of a fixture folder, members under `top/` as in PMC packages."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            if path.suffix in skip:
                continue
            tar.add(path, arcname=f"{top}/{path.name}" if top else path.name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def mirror(fixtures_dir, tmp_path_factory) -> Path:
    """A mirror laid out as the file list says: two good packages, one truncated, one absent."""
    root = tmp_path_factory.mktemp("pmc-mirror")
    packages = fixtures_dir / "pmc_packages"
    nihpp = _tar_gz(packages / "PMC10802347", "PMC10802347")
    (root / "oa_package/5c/1e").mkdir(parents=True)
    (root / "oa_package/5c/1e/PMC10802347.tar.gz").write_bytes(nihpp)
    (root / "oa_package/0e/53").mkdir(parents=True)
    (root / "oa_package/0e/53/elife-00353.tar.gz").write_bytes(_tar_gz(packages / "elife-00353", None))
    (root / "oa_package/7a/7a").mkdir(parents=True)
    (root / "oa_package/7a/7a/PMC10802348.tar.gz").write_bytes(nihpp[: len(nihpp) * 2 // 3])
    (root / "oa_file_list.csv").write_bytes(FILE_LIST.encode())
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    fail_once: set[str] = set()  # paths that answer 503 the first time (a flaky server)
    seen: list[str] = []

    def log_message(self, *args) -> None:
        return None

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path in self.fail_once:
            self.fail_once.discard(self.path)
            self.send_error(503, "injected")
            return
        super().do_GET()


@pytest.fixture(scope="module")
def http_base(mirror):
    handler = functools.partial(_QuietHandler, directory=str(mirror))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _ingest(source: PmcPackageSource, out: Path, workers: int = 1) -> Path:
    config = IngestConfig(input=out.parent, output=out, workers=workers, articles_per_unit=2, progress=False)
    run_ingest(config, source=source)
    return out


def _rows(root: Path, folder: str) -> list[dict]:
    paths = sorted((root / folder).glob("part-*.parquet")) if folder in ("articles", "errors") else sorted(
        root.glob("*/[0-9]*.parquet")
    )
    return [row for path in paths for row in pq.read_table(path).to_pylist()]


def test_folder_scan_lists_packages_sorted(mirror):
    source = PmcPackageSource(mirror)
    assert source.list_items() == [
        "oa_package/0e/53/elife-00353.tar.gz",
        "oa_package/5c/1e/PMC10802347.tar.gz",
        "oa_package/7a/7a/PMC10802348.tar.gz",
    ]
    assert source.describe() == {"kind": "pmc-package", "location": str(mirror), "packages": 3}


def test_open_item_reads_nxml_and_images_not_the_listing(mirror):
    source = PmcPackageSource(mirror, file_list=mirror / "oa_file_list.csv")
    item = source.open_item("oa_package/5c/1e/PMC10802347.tar.gz")
    assert item.location.endswith(f"PMC10802347.tar.gz!/PMC10802347/{NIHPP}.nxml")
    assert item.xml.startswith(b"<!DOCTYPE article") and len(item.xml) == 107463
    names = sorted(n.rsplit("/", 1)[1] for n in item.media_names)
    assert names == sorted(
        [f"{NIHPP}-f000{i}.gif" for i in (1, 2, 3, 4)] + [f"{NIHPP}-f000{i}.jpg" for i in (2, 3, 4)]
    )
    jpg = item.read_media(f"PMC10802347/{NIHPP}-f0002.jpg")
    assert jpg[:2] == b"\xff\xd8" and len(jpg) == 133246
    with pytest.raises(OSError, match="no member"):
        item.read_media("PMC10802347/absent.jpg")


def test_truncated_empty_and_non_gzip_packages_raise_clear_oserrors(mirror):
    data = (mirror / "oa_package/5c/1e/PMC10802347.tar.gz").read_bytes()
    with pytest.raises(PackageError, match=r"truncated .*after \d+ member\(s\).*download it again"):
        read_package_members(data[: len(data) // 2], "PMC10802347.tar.gz")
    with pytest.raises(PackageError, match="empty"):
        read_package_members(b"", "empty.tar.gz")
    with pytest.raises(PackageError, match="not a gzip tar"):
        read_package_members(b"<html>Not Found</html>", "page.tar.gz")
    no_article = io.BytesIO()
    with tarfile.open(fileobj=no_article, mode="w:gz") as tar:
        info = tarfile.TarInfo("PMC1/readme.pdf")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"pdf"))
    with pytest.raises(PackageError, match="no .nxml/.xml article"):
        read_package_members(no_article.getvalue(), "PMC1.tar.gz")
    assert issubclass(PackageError, OSError)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as whole:  # the untouched package reads
        assert len(whole.getnames()) == 8


def _check_archive(root: Path, where: str) -> None:
    rows = {r["key"]: r for r in _rows(root, "shards")}
    nihpp = sorted(k for k in rows if k.startswith("PMC10802347_"))
    assert len(nihpp) == 4
    # f0001 has only the thumbnail in the real package; the others use the full-size jpg
    assert [rows[k]["image_name"] for k in nihpp] == [f"{NIHPP}-f0001.gif"] + [
        f"{NIHPP}-f000{i}.jpg" for i in (2, 3, 4)
    ]
    assert [rows[k]["license_group"] for k in nihpp] == ["noncommercial"] * 4
    elife = [r for r in rows.values() if r["image_name"] == "elife-00353-fig1-v1.tif"]
    assert len(elife) == 1 and (elife[0]["width"], elife[0]["height"]) == (797, 914)
    articles = {a["article_id"]: a for a in _rows(root, "articles")}
    assert len(articles) == 2
    assert articles["PMC10802347"]["source"].startswith(where)
    errors = {e["id"]: e for e in _rows(root, "errors")}
    truncated = errors["oa_package/7a/7a/PMC10802348.tar.gz"]
    assert truncated["kind"] == "source-unreadable" and "truncated" in truncated["message"]
    absent = errors["oa_package/7b/7b/PMC10802349.tar.gz"]
    assert absent["kind"] == "source-unreadable"


def test_ingest_from_mirror_records_truncated_and_missing_packages(mirror, tmp_path):
    source = PmcPackageSource(mirror, file_list=mirror / "oa_file_list.csv")
    root = _ingest(source, tmp_path / "archive")
    _check_archive(root, str(mirror))
    errors = {e["id"]: e for e in _rows(root, "errors")}
    assert "not in the mirror" in errors["oa_package/7b/7b/PMC10802349.tar.gz"]["message"]
    manifest = (root / "manifest.json").read_text()
    assert '"kind": "pmc-package"' in manifest and '"file_list_rows": 4' in manifest


def test_ingest_over_http_equals_mirror_and_retries_a_flaky_server(mirror, http_base, tmp_path):
    _QuietHandler.fail_once = {"/oa_package/5c/1e/PMC10802347.tar.gz"}
    _QuietHandler.seen = []
    source = PmcPackageSource(http_base, file_list=f"{http_base}/oa_file_list.csv", net=FAST_RETRY)
    over_http = _ingest(source, tmp_path / "http")
    _check_archive(over_http, http_base)
    assert _QuietHandler.seen.count("/oa_package/5c/1e/PMC10802347.tar.gz") == 2  # 503, then the package
    errors = {e["id"]: e for e in _rows(over_http, "errors")}
    assert "404" in errors["oa_package/7b/7b/PMC10802349.tar.gz"]["message"]
    local = _ingest(PmcPackageSource(mirror, file_list=mirror / "oa_file_list.csv"), tmp_path / "local")
    strip = lambda rows: sorted((r["key"], r["sha256"], r["caption"]) for r in rows)  # noqa: E731
    assert strip(_rows(over_http, "shards")) == strip(_rows(local, "shards"))


def test_license_groups_preselect_rows_before_download(mirror, http_base):
    source = PmcPackageSource(
        http_base, file_list=f"{http_base}/oa_file_list.csv", license_groups=["commercial"], net=FAST_RETRY
    )
    assert source.list_items() == ["oa_package/0e/53/elife-00353.tar.gz", "oa_package/7b/7b/PMC10802349.tar.gz"]
    assert source.describe()["license_groups"] == ["commercial"]
    with pytest.raises(ValueError, match="needs the file list"):
        PmcPackageSource(mirror, license_groups=["commercial"])
    with pytest.raises(ValueError, match="unknown license group"):
        PmcPackageSource(mirror, file_list=mirror / "oa_file_list.csv", license_groups=["open"])
    with pytest.raises(ValueError, match="cannot be scanned"):
        PmcPackageSource(http_base)


def test_source_pickles_without_its_list_and_runs_in_spawn_workers(mirror, http_base, tmp_path):
    source = PmcPackageSource(http_base, file_list=f"{http_base}/oa_file_list.csv", net=FAST_RETRY)
    assert len(source.list_items()) == 4
    copy = pickle.loads(pickle.dumps(source))
    assert copy._items is None and copy._list is None
    assert copy.open_item("oa_package/5c/1e/PMC10802347.tar.gz").xml.startswith(b"<!DOCTYPE article")
    root = _ingest(source, tmp_path / "spawned", workers=2)
    assert len([r for r in _rows(root, "shards")]) == 5


def test_flat_mirror_finds_packages_by_file_name(mirror, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "elife-00353.tar.gz").write_bytes((mirror / "oa_package/0e/53/elife-00353.tar.gz").read_bytes())
    source = PmcPackageSource(flat, file_list=mirror / "oa_file_list.csv")
    item = source.open_item("oa_package/0e/53/elife-00353.tar.gz")
    assert item.location == f"{flat / 'elife-00353.tar.gz'}!/elife-00353-v1.xml"
    assert item.media_names == ["elife-00353-fig1-v1.tif"]


def test_missing_mirror_folder_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="PMC\\*.tar.gz packages"):
        PmcPackageSource(tmp_path / "nope")
