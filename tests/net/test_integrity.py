"""Damaged S3 bodies (flipped bytes, short, cut) through a real moto server and FaultProxy.

moto sends the `x-amz-checksum-crc32` of objects boto3 uploaded, so a flipped or short body
fails botocore's own response checksum validation (FlexibleChecksumError) exactly as from
AWS; with those headers stripped, the etag (the server's, or the listing's) must catch it.
"""

import hashlib
import json

import pytest

from biomedica.net import ChecksumMismatch, ContentError, NetClient, NetConfig, RetryPolicy, TransientError
from biomedica.net.errors import s3_error
from biomedica.testing.servers import FaultProxy, FaultRule, corrupting_proxy

FAST_RETRY = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02)
BODY = json.dumps({"pmcid": "PMC1", "license_code": "CC BY", "text": "x" * 300}).encode()
KEY = "integrity/record.json"
NO_CHECKSUMS = ("x-amz-checksum",)
NO_SERVER_DIGESTS = ("x-amz-checksum", "etag")


@pytest.fixture
def stored(s3_server, bucket) -> str:
    s3_server.admin_client().put_object(Bucket=bucket, Key=KEY, Body=BODY)
    return KEY


def _client(proxy: FaultProxy, **options) -> NetClient:
    return NetClient(NetConfig(endpoint_url=proxy.endpoint_url, retry=FAST_RETRY, **options))


def _causes(exc: BaseException) -> list[str]:
    names = []
    while exc is not None:
        names.append(type(exc).__name__)
        exc = exc.__cause__
    return names


@pytest.mark.parametrize("fault", ["flip", "truncate", "cut"])
def test_a_body_damaged_once_is_fetched_again(s3_server, bucket, stored, fault):
    with FaultProxy(s3_server.endpoint_url, rules=[FaultRule(path_contains=KEY, body=fault, times=1)]) as proxy:
        client = _client(proxy)
        assert client.get_object(bucket, KEY) == BODY
        assert [r.fault for r in proxy.requests_for(KEY)] == [fault, None]
        assert client.stats.retries == 1


def test_flexible_checksum_error_is_a_checksum_mismatch_then_a_clear_error(s3_server, bucket, stored):
    with FaultProxy(s3_server.endpoint_url, rules=[FaultRule(path_contains=KEY, body="flip")]) as proxy:
        with pytest.raises(ChecksumMismatch, match=r"gave up after 3 attempts; the body was damaged") as info:
            _client(proxy).get_object(bucket, KEY)
        assert len(proxy.requests_for(KEY)) == 3
    assert "FlexibleChecksumError" in _causes(info.value)  # botocore's own check saw it (x-amz-checksum-crc32)
    assert f"s3://{bucket}/{KEY}" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("strip, says", [(NO_CHECKSUMS, "the server's etag"), (NO_SERVER_DIGESTS, "the listing's etag")])
def test_without_checksum_headers_the_etag_catches_a_flipped_byte(s3_server, bucket, stored, strip, says):
    listed = hashlib.md5(BODY).hexdigest()
    rule = FaultRule(path_contains=KEY, body="flip", strip_headers=strip, times=1)
    with FaultProxy(s3_server.endpoint_url, rules=[rule]) as proxy:
        client = _client(proxy)
        assert client.get_object(bucket, KEY, etag=listed) == BODY
        assert client.stats.retries == 1
        rule.times = None  # damaged on every attempt: the message says which check failed
        with pytest.raises(ChecksumMismatch, match=says):
            client.get_object(bucket, KEY, etag=listed)


def test_a_multipart_etag_is_not_taken_for_an_md5(s3_server, bucket):
    admin = s3_server.admin_client()
    key = "integrity/multipart.bin"
    upload = admin.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [admin.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
             for n, body in ((1, b"a" * 5 * 1024 * 1024), (2, b"b" * 10))]
    admin.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={
        "Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(parts, start=1)]})
    with FaultProxy(s3_server.endpoint_url) as proxy:
        client = _client(proxy)
        listed = next(o for o in client.list_objects(bucket, key)).etag
        assert listed.endswith("-2")
        assert len(client.get_object(bucket, key, etag=listed)) == 5 * 1024 * 1024 + 10
        assert client.stats.retries == 0


def test_the_cache_never_keeps_a_damaged_body(s3_server, bucket, stored, tmp_path):
    listed = hashlib.md5(BODY).hexdigest()
    rule = FaultRule(path_contains=KEY, body="flip", strip_headers=NO_SERVER_DIGESTS)
    with FaultProxy(s3_server.endpoint_url, rules=[rule]) as proxy:
        client = _client(proxy, cache_dir=tmp_path)
        with pytest.raises(ChecksumMismatch):
            client.get_object(bucket, KEY, etag=listed)
        assert not [p for p in tmp_path.rglob("*") if p.is_file()]
        rule.times = 0  # the network is fine again: the intact body is cached
        assert client.get_object(bucket, KEY, etag=listed) == BODY
        (entry,) = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert entry.read_bytes() == BODY
        entry.write_bytes(BODY[:-1] + b"!")  # damaged on disk: dropped and fetched again
        proxy.clear_log()
        assert client.get_object(bucket, KEY, etag=listed) == BODY
        assert len(proxy.requests_for(KEY)) == 1 and entry.read_bytes() == BODY


def test_a_body_the_caller_cannot_parse_is_retried_and_never_cached(s3_server, bucket, stored, tmp_path):
    def parse(raw: bytes) -> dict:
        record = json.loads(raw)
        if "license_code" not in record:
            raise ValueError("no license_code")
        return record

    # truncated with a matching Content-Length and no digest compared: only the parse can tell
    rule = FaultRule(path_contains=KEY, body="truncate", strip_headers=("x-amz-checksum",))
    listed = hashlib.md5(BODY).hexdigest()
    with FaultProxy(s3_server.endpoint_url, rules=[rule]) as proxy:
        client = _client(proxy, cache_dir=tmp_path, verify_etag=False)  # a server whose etags are no md5s
        with pytest.raises(ContentError, match=r"gave up after 3 attempts"):
            client.load_object(bucket, KEY, parse, etag=listed)
        assert not [p for p in tmp_path.rglob("*") if p.is_file()]
        rule.times = 1
        assert client.load_object(bucket, KEY, parse, etag=listed)["pmcid"] == "PMC1"
        assert [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()] == [BODY]


def test_body_read_errors_map_to_retryable_errors():
    from botocore import exceptions as bx
    from botocore.parsers import ResponseParserError
    from urllib3.exceptions import ProtocolError

    url = "s3://b/k"
    assert isinstance(s3_error(url, bx.FlexibleChecksumError(error_msg="Expected checksum A did not match B")),
                      ChecksumMismatch)
    for exc in (
        bx.ResponseStreamingError(error=ProtocolError("Connection broken: IncompleteRead")),
        bx.IncompleteReadError(actual_bytes=3, expected_bytes=9),
        bx.ReadTimeoutError(endpoint_url="http://127.0.0.1:1/b/k", error="read timed out"),
        ProtocolError("Connection broken"),
    ):
        assert isinstance(s3_error(url, exc), TransientError), exc
    garbled = s3_error(url, ResponseParserError("Unable to parse response, invalid XML received:\nb'SECRET BYTES'"))
    assert isinstance(garbled, TransientError) and "SECRET" not in str(garbled)


def test_corrupting_proxy_damages_the_same_requests_for_a_seed(s3_server, bucket, stored):
    keys = [f"integrity/many/{n:03d}.bin" for n in range(24)]
    admin = s3_server.admin_client()
    for key in keys:
        admin.put_object(Bucket=bucket, Key=key, Body=key.encode() * 20)

    def damaged(seed: int) -> list[tuple[str, str]]:
        with corrupting_proxy(s3_server.endpoint_url, fraction=0.25, seed=seed) as proxy:
            client = NetClient(NetConfig(endpoint_url=proxy.endpoint_url, retry=RetryPolicy(retries=5, base_delay=0.01)))
            assert client.get_many(f"s3://{bucket}/{key}" for key in keys) == [k.encode() * 20 for k in keys]
            list(client.list_objects(bucket, "integrity/many/"))  # listings are never damaged
            return sorted((r.path, r.fault) for r in proxy.log if r.fault)

    first = damaged(7)
    assert 2 <= len(first) <= 20 and {fault for _, fault in first} <= {"flip", "truncate", "cut"}
    assert damaged(7) == first
    assert damaged(8) != first
