import random
import subprocess

import pytest
from pydantic import ValidationError

from biomedica.net import NetClient, NetConfig, TransientError
from biomedica.net.retry import RetryPolicy
from biomedica.net.stream import FetchOptions, pipe_url, read_bytes
from biomedica.testing.servers import FaultProxy, FaultRule

FAST = {"base_delay": 0.001, "max_delay": 0.01}


def test_full_jitter_stays_under_the_doubling_ceiling():
    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=3.0)
    rng = random.Random(0)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert max(delays) <= ceiling
        assert min(delays) >= 0.0
        assert max(delays) > ceiling * 0.8  # jitter spans the whole range
        assert len(set(delays)) > 150  # and is not a fixed step


def test_retries_count_the_tries_after_the_first():
    assert RetryPolicy(retries=0).attempts == 1
    assert RetryPolicy(retries=3).attempts == 4
    assert RetryPolicy(max_attempts=6) == RetryPolicy(retries=5)  # the old spelling, kept for one release
    with pytest.raises(ValueError, match="retries must be >= 0"):
        RetryPolicy(retries=-1)


def test_configs_validate_the_policy_from_plain_data():
    assert NetConfig(retry={"retries": 2, "base_delay": 0.1}).retry == RetryPolicy(retries=2, base_delay=0.1)
    assert NetConfig(retry={"max_attempts": 3}).retry.retries == 2
    assert NetConfig().model_dump()["retry"] == {"retries": 4, "base_delay": 0.5, "max_delay": 30.0}
    with pytest.raises(ValidationError, match="retries must be >= 0"):
        NetConfig(retry={"retries": -1})
    with pytest.raises(ValidationError, match="retry.attempts"):
        NetConfig(retry={"attempts": 3})


def _failing_server(serve, root, failures: int):
    root.mkdir(parents=True)
    (root / "x.bin").write_bytes(b"payload")
    return serve(root, fail_first=failures)


@pytest.mark.parametrize("retries", [0, 2])
def test_client_and_stream_try_exactly_retries_plus_one_times(serve, tmp_path, retries):
    policy = RetryPolicy(retries=retries, **FAST)
    readers = {
        "client": lambda url: NetClient(NetConfig(retry=policy)).get(url),
        "stream": lambda url: read_bytes(url, FetchOptions(retry=policy)),
    }
    for name, read in readers.items():
        down = _failing_server(serve, tmp_path / name / "down", failures=100)
        with pytest.raises(TransientError) as info:
            read(f"{down.url}/x.bin")
        assert len(down.options.requests) == retries + 1, name
        assert info.value.attempts == retries + 1, name
        recovering = _failing_server(serve, tmp_path / name / "up", failures=retries)
        assert read(f"{recovering.url}/x.bin") == b"payload", name
        assert len(recovering.options.requests) == retries + 1, name


def test_the_pipe_helper_takes_the_same_policy(serve, tmp_path):
    def pipe(retries: int):
        server = _failing_server(serve, tmp_path / str(retries), failures=2)
        command = pipe_url(f"{server.url}/x.bin", FetchOptions(retry=RetryPolicy(retries=retries, **FAST)))
        result = subprocess.run(command[len("pipe:"):], shell=True, capture_output=True, text=True, check=False)
        return result, len(server.options.requests)

    failed, requests = pipe(retries=1)
    assert (failed.returncode, requests) == (1, 2)
    assert "failed after 2 attempts" in failed.stderr
    recovered, requests = pipe(retries=2)
    assert (recovered.returncode, requests, recovered.stdout) == (0, 3, "payload")


def test_s3_reads_through_a_fault_proxy_try_retries_plus_one_times(s3_server, bucket):
    s3_server.admin_client().put_object(Bucket=bucket, Key="retry/obj.bin", Body=b"s3 bytes")
    policy = RetryPolicy(retries=2, **FAST)
    readers = {
        "client": lambda endpoint: NetClient(NetConfig(endpoint_url=endpoint, retry=policy)).get(f"s3://{bucket}/retry/obj.bin"),
        "stream": lambda endpoint: read_bytes(f"s3://{bucket}/retry/obj.bin", FetchOptions(retry=policy, s3_endpoint=endpoint)),
    }
    for name, read in readers.items():
        with FaultProxy(s3_server.endpoint_url, rules=[FaultRule("retry/obj.bin", status=500)]) as proxy:
            with pytest.raises(TransientError, match="after 3 attempts"):
                read(proxy.endpoint_url)
            assert [r.status for r in proxy.requests_for("retry/obj.bin")] == [500] * 3, name
        with FaultProxy(s3_server.endpoint_url, rules=[FaultRule("retry/obj.bin", status=503, times=2)]) as proxy:
            assert read(proxy.endpoint_url) == b"s3 bytes", name
            assert [r.status for r in proxy.requests_for("retry/obj.bin")] == [503, 503, 200], name
