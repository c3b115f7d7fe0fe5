import io
import subprocess
import tarfile

import pytest

from biomedica.net.errors import FetchError, NotFoundError
from biomedica.net.retry import RetryPolicy
from biomedica.net.stream import FetchOptions, filter_tar, pipe_url, read_bytes, sample_key
from biomedica.testing.shards import write_shards

FAST = dict(retry=RetryPolicy(retries=3, base_delay=0.01), connect_timeout=10, read_timeout=10)


def test_https_read_sends_the_token_from_the_named_env_var(serve, tmp_path, monkeypatch):
    (tmp_path / "sizes.json").write_text('{"000000.tar": 3}')
    server = serve(tmp_path, token="s3cret")
    monkeypatch.setenv("MY_HUB_TOKEN", "s3cret")
    data = read_bytes(f"{server.url}/sizes.json", FetchOptions(auth_env="MY_HUB_TOKEN", **FAST))
    assert data == b'{"000000.tar": 3}'
    assert server.options.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"


def test_missing_or_wrong_token_fails_at_once_with_the_fix(serve, tmp_path, monkeypatch):
    (tmp_path / "x").write_text("x")
    server = serve(tmp_path, token="s3cret")
    monkeypatch.delenv("MY_HUB_TOKEN", raising=False)
    with pytest.raises(FetchError, match="MY_HUB_TOKEN .*not set"):
        read_bytes(f"{server.url}/x", FetchOptions(auth_env="MY_HUB_TOKEN", **FAST))
    monkeypatch.setenv("MY_HUB_TOKEN", "wrong")
    with pytest.raises(FetchError, match="HTTP 401.*MY_HUB_TOKEN"):
        read_bytes(f"{server.url}/x", FetchOptions(auth_env="MY_HUB_TOKEN", **FAST))
    assert len(server.options.requests) == 1  # no retries on a refused token


def test_not_found_is_not_retried(serve, tmp_path):
    server = serve(tmp_path)
    with pytest.raises(NotFoundError):
        read_bytes(f"{server.url}/missing.json", FetchOptions(**FAST))
    assert len(server.options.requests) == 1


def test_dropped_connection_resumes_with_a_range_request(serve, tmp_path):
    payload = bytes(range(256)) * 400  # 100 KiB
    (tmp_path / "blob.bin").write_bytes(payload)
    server = serve(tmp_path, drop_after=30_000)
    assert read_bytes(f"{server.url}/blob.bin", FetchOptions(**FAST)) == payload
    ranges = [r["headers"].get("Range") for r in server.options.requests]
    assert ranges == [None, "bytes=30000-"]


def test_resume_when_the_server_ignores_ranges_skips_what_was_sent(serve, tmp_path):
    payload = bytes(range(256)) * 400
    (tmp_path / "blob.bin").write_bytes(payload)
    server = serve(tmp_path, drop_after=30_000, honour_ranges=False)
    assert read_bytes(f"{server.url}/blob.bin", FetchOptions(**FAST)) == payload
    assert len(server.options.requests) == 2


def test_redirect_to_another_host_drops_the_authorization_header(serve, tmp_path, monkeypatch):
    (tmp_path / "x.json").write_text("{}")
    cdn = serve(tmp_path)
    hub = serve(tmp_path, redirect_to=cdn.url)
    monkeypatch.setenv("HUB_TOKEN", "s3cret")
    assert read_bytes(f"{hub.url}/x.json", FetchOptions(auth_env="HUB_TOKEN", **FAST)) == b"{}"
    assert hub.options.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in cdn.options.requests[0]["headers"]


def test_hf_and_anonymous_s3_urls_are_fetched_over_http(serve, tmp_path, monkeypatch):
    (tmp_path / "datasets/org/name/resolve/v2/commercial").mkdir(parents=True)
    (tmp_path / "datasets/org/name/resolve/v2/commercial/sizes.json").write_text('{"hf": 1}')
    (tmp_path / "bucket/archive").mkdir(parents=True)
    (tmp_path / "bucket/archive/sizes.json").write_text('{"s3": 1}')
    server = serve(tmp_path, token="hf_tok")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_tok")
    assert read_bytes("hf://datasets/org/name@v2/commercial/sizes.json", FetchOptions(**FAST)) == b'{"hf": 1}'
    server.options.token = None
    s3 = FetchOptions(s3_endpoint=server.url, **FAST)
    assert read_bytes("s3://bucket/archive/sizes.json", s3) == b'{"s3": 1}'
    assert [r["path"] for r in server.options.requests] == [
        "/datasets/org/name/resolve/v2/commercial/sizes.json", "/bucket/archive/sizes.json"]


def test_sample_key_matches_webdataset_grouping():
    assert sample_key("PMC123_000.jpg") == "PMC123_000"
    assert sample_key("DOI-10-7554-eLife-00353_000.json") == "DOI-10-7554-eLife-00353_000"
    assert sample_key("a/b/PMC1_001.tar.gz") == "a/b/PMC1_001"
    assert sample_key("README") is None


def test_filter_tar_keeps_exactly_the_listed_samples(tmp_path):
    [shard] = write_shards(tmp_path, "A", [5], (255, 0, 0), "red")
    out = io.BytesIO()
    with open(shard, "rb") as source:
        kept = filter_tar(source, out, {"A000_001", "A000_003", "not-there"})
    assert kept == 2
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = tar.getnames()
    assert names == [f"A000_00{n}.{ext}" for n in (1, 3) for ext in ("png", "txt", "json")]


def test_pipe_command_streams_a_filtered_shard_with_auth(serve, tmp_path, monkeypatch):
    write_shards(tmp_path / "c", "A", [4], (0, 0, 255), "blue")
    server = serve(tmp_path, token="tok")
    monkeypatch.setenv("SHARD_TOKEN", "tok")
    keys = tmp_path / "keys.txt"
    keys.write_text("A000_002\n")
    url = pipe_url(f"{server.url}/c/000000.tar", FetchOptions(auth_env="SHARD_TOKEN"), str(keys))
    assert url.startswith("pipe:") and "tok" not in url.replace("SHARD_TOKEN", "")
    output = subprocess.run(url[len("pipe:"):], shell=True, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(output)) as tar:
        assert tar.getnames() == ["A000_002.png", "A000_002.txt", "A000_002.json"]


def test_pipe_command_fails_when_a_listed_key_is_not_in_the_shard(demo_archive, serve, tmp_path):
    """A stale key list must not stream the rest and exit 0: the missing samples would be dropped silently."""
    import pyarrow.parquet as pq

    write_shards(tmp_path / "c", "A", [4], (0, 0, 255), "blue")  # no index: the tar is read whole and filtered
    indexed = demo_archive / "commercial" / "000000.tar"
    key = pq.read_table(indexed.with_suffix(".parquet"), columns=["key"]).column("key").to_pylist()[0]
    keys = tmp_path / "keys.txt"
    server = serve(tmp_path)
    archive_server = serve(demo_archive)
    for url, listed in ((f"{server.url}/c/000000.tar", "A000_002\nA000_999\n"),
                        (f"{archive_server.url}/commercial/000000.tar", f"{key}\nPMC0_999\n")):
        keys.write_text(listed)
        for ranges in (True, False):
            command = pipe_url(url, FetchOptions(**FAST), str(keys), ranges=ranges)[len("pipe:"):]
            result = subprocess.run(command, shell=True, capture_output=True)
            stderr = result.stderr.decode()
            assert result.returncode == 1, (url, ranges, stderr)
            assert stderr.startswith(f"biomedica.net.stream: {url}: 1 of 2 listed sample(s)")
            assert "re-run `biomedica select`" in stderr


def test_pipe_command_fails_with_one_line_naming_the_url(tmp_path):
    url = pipe_url("http://127.0.0.1:9/none.tar", FetchOptions(retry=RetryPolicy(retries=0), connect_timeout=2, read_timeout=2))
    result = subprocess.run(url[len("pipe:"):], shell=True, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("biomedica.net.stream: http://127.0.0.1:9/none.tar: failed after 1 attempts")


def test_local_shards_are_read_directly_unless_filtered(tmp_path):
    assert pipe_url(str(tmp_path / "000000.tar"), FetchOptions()) == str(tmp_path / "000000.tar")
    assert pipe_url(str(tmp_path / "000000.tar"), FetchOptions(), "k.txt").startswith("pipe:")


def test_openclip_tar_reader_reads_shards_through_the_pipe(serve, tmp_path):
    """OpenCLIP's own tar expander (the webdataset 0.2.86 API it needs) over our pipe: URLs."""
    from open_clip_train.data import tarfile_to_samples_nothrow

    write_shards(tmp_path / "c", "A", [3, 2], (0, 255, 0), "green")
    server = serve(tmp_path)
    urls = [pipe_url(f"{server.url}/c/{n:06d}.tar", FetchOptions()) for n in range(2)]
    samples = list(tarfile_to_samples_nothrow([{"url": u} for u in urls]))
    assert [s["__key__"] for s in samples] == ["A000_000", "A000_001", "A000_002", "A001_000", "A001_001"]
    assert samples[0]["txt"] == b"green 0"
    assert {"png", "txt", "json"} <= set(samples[0])


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]


def test_selected_samples_are_read_by_byte_ranges_from_the_shard_index(demo_archive, serve):
    import pyarrow.parquet as pq

    from biomedica.net.stream import RangePolicy, filter_by_ranges, index_url_of

    shard = demo_archive / "commercial" / "000000.tar"
    keys = pq.read_table(shard.with_suffix(".parquet"), columns=["key"]).column("key").to_pylist()
    chosen = {keys[1], keys[-1]}
    server = serve(demo_archive)
    url = f"{server.url}/commercial/000000.tar"
    out = io.BytesIO()
    policy = RangePolicy(max_gap_bytes=0, whole_shard_fraction=1.0)
    assert filter_by_ranges(url, index_url_of(url), chosen, out, FetchOptions(**FAST), policy) == 2
    expected = io.BytesIO()
    with open(shard, "rb") as source:
        filter_tar(source, expected, chosen)
    assert _members(out.getvalue()) == _members(expected.getvalue())
    tar_gets = server.shard_requests()
    assert len(tar_gets) == 2 and all(r["headers"]["Range"].startswith("bytes=") for r in tar_gets)
    fetched = sum(int(e) - int(s) + 1 for s, e in (r["headers"]["Range"][6:].split("-") for r in tar_gets))
    assert fetched < shard.stat().st_size / 3


def test_ranges_fall_back_to_the_whole_shard_without_an_index_or_when_most_is_selected(tmp_path, serve):
    from biomedica.net.stream import filter_by_ranges

    write_shards(tmp_path, "A", [3], (1, 1, 1), "x")
    server = serve(tmp_path)
    url = f"{server.url}/000000.tar"
    assert filter_by_ranges(url, f"{server.url}/000000.parquet", {"A000_001"}, io.BytesIO(), FetchOptions(**FAST)) is None


def test_pipe_with_keys_uses_the_index_and_rejects_a_stale_one(demo_archive, serve, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    shard = demo_archive / "commercial" / "000000.tar"
    key = pq.read_table(shard.with_suffix(".parquet"), columns=["key"]).column("key").to_pylist()[2]
    (tmp_path / "keys.txt").write_text(key + "\n")
    server = serve(demo_archive)
    command = pipe_url(f"{server.url}/commercial/000000.tar", FetchOptions(**FAST), str(tmp_path / "keys.txt"))
    data = subprocess.run(command[len("pipe:"):], shell=True, capture_output=True, check=True).stdout
    assert [name for name, _ in _members(data)] == [f"{key}.{ext}" for ext in ("png", "txt", "json")] or \
        [name for name, _ in _members(data)] == [f"{key}.{ext}" for ext in ("jpg", "txt", "json")]
    assert [r["path"] for r in server.options.requests] == ["/commercial/000000.parquet", "/commercial/000000.tar"]
    assert "Range" in server.options.requests[-1]["headers"]

    stale = tmp_path / "stale"
    shutil.copytree(demo_archive / "commercial", stale)
    shutil.copy(demo_archive / "commercial" / "000001.parquet", stale / "000000.parquet")
    other_key = pq.read_table(stale / "000000.parquet", columns=["key"]).column("key").to_pylist()[0]
    (tmp_path / "keys.txt").write_text(other_key + "\n")
    server = serve(tmp_path)
    command = pipe_url(f"{server.url}/stale/000000.tar", FetchOptions(**FAST), str(tmp_path / "keys.txt"))
    result = subprocess.run(command[len("pipe:"):], shell=True, capture_output=True, text=True)
    assert result.returncode == 1 and "the index does not belong to this shard" in result.stderr


HEAVY_MODULES = {"pydantic", "pyarrow", "numpy", "boto3", "botocore", "urllib3"}


def test_the_pipe_helper_imports_only_the_standard_library(serve, tmp_path):
    """`python -m biomedica.net.stream` runs once per shard: no pydantic/pyarrow/numpy/boto3/urllib3."""
    import sys

    write_shards(tmp_path / "c", "A", [3], (9, 9, 9), "grey")  # no index beside it: the key filter streams
    (tmp_path / "keys.txt").write_text("A000_001\n")
    server = serve(tmp_path)
    argv = [f"{server.url}/c/000000.tar", *FetchOptions(**FAST).to_argv(), "--keys", str(tmp_path / "keys.txt")]
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "biomedica.net.stream", *argv],
                            capture_output=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in result.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "biomedica" in imported and "tarfile" in imported  # the log is read right
    assert imported & HEAVY_MODULES == set()
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        assert tar.getnames() == ["A000_001.png", "A000_001.txt", "A000_001.json"]


def test_old_train_fetch_pipe_lines_with_timeout_and_backoff_keep_working(serve, tmp_path):
    """Run directories written before the move hold `python -m biomedica.train.fetch URL --timeout T --backoff B`."""
    import sys

    from biomedica.net.stream import _parse_args

    write_shards(tmp_path / "c", "A", [3], (0, 0, 255), "blue")
    (tmp_path / "keys.txt").write_text("A000_001\n")
    server = serve(tmp_path)
    url = f"{server.url}/c/000000.tar"
    old = [sys.executable, "-m", "biomedica.train.fetch", url, "--retries", "2", "--timeout", "7", "--backoff", "0.25",
           "--keys", str(tmp_path / "keys.txt")]
    output = subprocess.run(old, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(output)) as tar:
        assert tar.getnames() == ["A000_001.png", "A000_001.txt", "A000_001.json"]
    args = _parse_args(old[3:])
    assert (args.connect_timeout, args.read_timeout, args.base_delay, args.retries) == (7.0, 7.0, 0.25, 2)
    assert "--timeout" not in subprocess.run([sys.executable, "-m", "biomedica.net.stream", "--help"],
                                             capture_output=True, text=True, check=True).stdout
