"""NetClient against a real S3 server (moto) on 127.0.0.1, behind a fault-injecting proxy."""

import hashlib
import pickle

import pytest

from biomedica.net import ChecksumMismatch, NetClient, NetConfig, NotFoundError, RetryPolicy, TokenBucket
from biomedica.testing.servers import FaultProxy, FaultRule

FAST_RETRY = RetryPolicy(retries=3, base_delay=0.01, max_delay=0.05)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def objects(s3_server, bucket):
    admin = s3_server.admin_client()
    data = {f"client/obj{i}.bin": bytes([i]) * (100 + i) for i in range(6)}
    for key, body in data.items():
        admin.put_object(Bucket=bucket, Key=key, Body=body)
    return data


def _client(proxy: FaultProxy, **options) -> NetClient:
    return NetClient(NetConfig(endpoint_url=proxy.endpoint_url, retry=FAST_RETRY, **options))


def test_get_verifies_md5_and_lists(s3_server, bucket, objects):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        client = _client(proxy)
        body = objects["client/obj3.bin"]
        assert client.get(f"s3://{bucket}/client/obj3.bin?md5={_md5(body)}") == body
        listed = list(client.list_objects(bucket, "client/"))
        assert [o.key for o in listed] == sorted(objects)
        assert listed[0].etag == _md5(objects["client/obj0.bin"])  # single-part etag is the md5
        assert listed[0].size == 100 and listed[0].last_modified.endswith("+00:00")
        assert client.list_prefixes(bucket, "") == ["client/"]
        assert client.stats.as_dict()["retries"] == 0


def test_intermittent_500s_are_retried(s3_server, bucket, objects):
    # every other object fails once, then succeeds (a fixed pattern: `fail_every` under concurrent
    # requests could land one object's every attempt on a failing turn and exhaust its retries)
    flaky = list(objects)[::2]
    rules = [FaultRule(path_contains=f"/{bucket}/{key}", status=500, times=1) for key in flaky]
    with FaultProxy(s3_server.endpoint_url, rules=rules) as proxy:
        client = _client(proxy)
        got = client.get_many(f"s3://{bucket}/{key}?md5={_md5(body)}" for key, body in objects.items())
        assert got == list(objects.values())
        statuses = [r.status for r in proxy.log]
        assert statuses.count(500) == len(flaky) and statuses.count(200) == len(objects)
        assert client.stats.retries == len(flaky)


def test_fail_every_n_th_request_is_retried_in_order(s3_server, bucket, objects):
    with FaultProxy(s3_server.endpoint_url, fail_every=2) as proxy:
        client = _client(proxy)
        got = [client.get(f"s3://{bucket}/{key}?md5={_md5(body)}") for key, body in objects.items()]
        assert got == list(objects.values())
        statuses = [r.status for r in proxy.log]
        assert statuses.count(500) >= 2 and statuses.count(200) == len(objects)
        assert client.stats.retries == statuses.count(500)


def test_bad_md5_is_retried_then_raised(s3_server, bucket, objects):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        client = _client(proxy)
        with pytest.raises(ChecksumMismatch, match=r"md5 of the 101 bytes received .*gave up after 4 attempts") as info:
            client.get(f"s3://{bucket}/client/obj1.bin?md5={'0' * 32}")
        assert isinstance(info.value, OSError)
        assert len(proxy.requests_for("/client/obj1.bin")) == 4


def test_missing_object_fails_at_once(s3_server, bucket, objects):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        client = _client(proxy)
        with pytest.raises(NotFoundError, match="does not exist"):
            client.get(f"s3://{bucket}/client/nope.bin")
        assert len(proxy.requests_for("/client/nope.bin")) == 1


def test_stalled_response_times_out_and_is_retried(s3_server, bucket, objects):
    rule = FaultRule(path_contains="/client/obj2.bin", stall=1.5, times=1)
    with FaultProxy(s3_server.endpoint_url, rules=[rule]) as proxy:
        client = _client(proxy, read_timeout=0.5, connect_timeout=1.0)
        assert client.get(f"s3://{bucket}/client/obj2.bin") == objects["client/obj2.bin"]
        assert client.stats.retries == 1


def test_cache_answers_the_second_get(s3_server, bucket, objects, tmp_path):
    body = objects["client/obj4.bin"]
    url = f"s3://{bucket}/client/obj4.bin?md5={_md5(body)}"
    with FaultProxy(s3_server.endpoint_url) as proxy:
        first = _client(proxy, cache_dir=tmp_path)
        assert first.get(url) == body
        again = pickle.loads(pickle.dumps(first))  # what a spawn worker receives
        assert again.get(url) == body
        assert again.stats.cache_hits == 1
        assert len(proxy.requests_for("/client/obj4.bin")) == 1
        # an object without a known version is never served from the cache
        unversioned = f"s3://{bucket}/client/obj5.bin"
        again.get(unversioned)
        again.get(unversioned)
        assert len(proxy.requests_for("/client/obj5.bin")) == 2


def test_plain_http_get_and_rate_limit(s3_server, bucket, objects):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        client = NetClient(NetConfig(retry=FAST_RETRY), rate_limiter=TokenBucket(rate=50, burst=1))
        urls = [f"{proxy.endpoint_url}/{bucket}/{key}" for key in objects]
        import time

        started = time.monotonic()
        assert client.get_many(urls) == list(objects.values())
        assert time.monotonic() - started >= 0.09  # 6 requests at 50/s, first free
        with pytest.raises(NotFoundError, match="HTTP 404"):
            client.get(f"{proxy.endpoint_url}/{bucket}/client/missing")
