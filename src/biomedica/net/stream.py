"""Stream one shard (or a small index file) from any supported location, with retries.

Used two ways:

- in-process, `read_bytes(url)` fetches `sizes.json`, `manifest.json` and key manifests;
- as a WebDataset `pipe:` command, `python -m biomedica.net.stream URL [--keys FILE]`,
  which writes the shard to stdout. OpenCLIP's loader opens every shard URL with
  webdataset's `gopen`; a `pipe:` URL works in every DataLoader worker and every torchrun
  rank without registering anything in those processes, and keeps the token out of the
  command line (only the *name* of the environment variable is passed).

A dropped connection is resumed where it stopped (HTTP `Range`, or skipping the bytes
already sent when the server ignores ranges), so one flaky read never loses a shard.
Errors, `RetryPolicy` (`retries` = retries after the first attempt) and the timeouts
(`connect_timeout`, `read_timeout`) are the ones `NetClient` uses.
With `--keys`, only the samples whose key is listed are written (a `select` on `__key__`
done before OpenCLIP's pipeline sees it): when the archive's shard index is beside the tar,
only the byte ranges of those samples are requested (a 10 % subset reads about 10 % of the
bytes); otherwise, or when the ranges would cover most of the shard, the tar stream is
read whole and filtered on the fly. A listed key the shard (or its index) does not hold
fails the command: a stale key list never drops samples silently.

Hand-written on purpose: urllib (stdlib) instead of `requests`/`curl`, so the helper
starts fast, has no dependency beyond the standard library (tests check that it imports
no pydantic, pyarrow, numpy, boto3 or urllib3), and can strip the Authorization header
when a redirect leaves the host (hub downloads redirect to a CDN).
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO
from urllib.parse import urlsplit

from biomedica.archive.keys import split_member_name
from biomedica.io.locations import HF_TOKEN_ENV, local_path, parse_hf_url, parse_s3_url, url_scheme
from biomedica.net.errors import FetchError, NotFoundError, TransientError, error_for_status, s3_error
from biomedica.net.retry import RetryPolicy

CHUNK = 1 << 20
TAR_BLOCK = 512
NotFound = NotFoundError  # this module's old name, kept for one release
# shards are large and hubs throttle: wait longer between tries than the client's default
STREAM_RETRY = RetryPolicy(retries=5, base_delay=1.0, max_delay=30.0)


@dataclass(frozen=True)
class FetchOptions:
    """How to reach remote shards: credentials by env-var name, retry policy, timeouts (NetConfig's names)."""

    auth_env: str | None = None  # env var holding a token ("Bearer " is added unless a scheme is given)
    retry: RetryPolicy = STREAM_RETRY
    connect_timeout: float = 60.0  # seconds to open a connection
    read_timeout: float = 60.0  # seconds without data before a read fails
    s3_anonymous: bool = True  # unsigned HTTPS GET; False: boto3 (or the aws CLI) with the usual credentials
    s3_endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO/moto, or a mirror

    def to_argv(self) -> list[str]:
        argv = [
            "--retries", str(self.retry.retries), "--base-delay", f"{self.retry.base_delay:g}",
            "--max-delay", f"{self.retry.max_delay:g}", "--connect-timeout", f"{self.connect_timeout:g}",
            "--read-timeout", f"{self.read_timeout:g}",
        ]
        if self.auth_env:
            argv += ["--auth-env", self.auth_env]
        if not self.s3_anonymous:
            argv += ["--s3-signed"]
        if self.s3_endpoint:
            argv += ["--s3-endpoint", self.s3_endpoint]
        return argv


def authorization_header(url: str, options: FetchOptions) -> str | None:
    """The Authorization value for `url`: the env var named in options, else HF_TOKEN for hf://."""
    name = options.auth_env
    if name is None and url_scheme(url) == "hf":
        name = HF_TOKEN_ENV
        if not os.environ.get(name):
            return None  # public dataset: no token needed
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise FetchError(url, f"environment variable {name} (auth_env) is not set; export it with your token")
    return value if " " in value.strip() else f"Bearer {value.strip()}"


class _SameHostAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send the Authorization header to another host; keep the read timeout."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib hook
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.read_timeout = req.read_timeout
            if urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
                new.remove_header("Authorization")
        return new


class _ReadTimeout:
    """Connect within the request's timeout (connect_timeout), then allow `read_timeout` per read."""

    def __init__(self, *args, read_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _HTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(partial(_HTTPConnection, read_timeout=req.read_timeout), req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(partial(_HTTPSConnection, read_timeout=req.read_timeout), req, **kwargs)


_OPENER = urllib.request.build_opener(_SameHostAuthRedirect(), _HTTPHandler(), _HTTPSHandler())


def _http_url(url: str, options: FetchOptions) -> str:
    scheme = url_scheme(url)
    if scheme == "hf":
        return parse_hf_url(url).resolve_url()
    if scheme == "s3":
        return parse_s3_url(url).https_url(options.s3_endpoint)
    return url


def _range_header(offset: int, end: int | None) -> str | None:
    if not offset and end is None:
        return None
    return f"bytes={offset}-{'' if end is None else end - 1}"


def _open_http(url: str, options: FetchOptions, offset: int, end: int | None) -> tuple[BinaryIO, bool]:
    """(response, range honoured) for a GET of bytes [offset, end)."""
    request = urllib.request.Request(_http_url(url, options), headers={"User-Agent": "biomedica-train"})
    request.read_timeout = options.read_timeout  # read by _HTTPHandler/_HTTPSHandler
    auth = authorization_header(url, options)
    if auth:
        request.add_header("Authorization", auth)
    if _range_header(offset, end):
        request.add_header("Range", _range_header(offset, end))
    try:
        response = _OPENER.open(request, timeout=options.connect_timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return io.BytesIO(b""), True  # nothing left after offset
        hint = f"check the token in ${options.auth_env or HF_TOKEN_ENV}" if auth else "set auth_env to the env var holding a token"
        raise error_for_status(url, exc.code, exc.reason, denied_hint=hint) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
        raise TransientError(url, str(getattr(exc, "reason", exc))) from None
    return response, response.status == 206


def _open_s3_signed(url: str, options: FetchOptions, offset: int, end: int | None) -> tuple[BinaryIO, bool]:
    """Credentialed S3 read: boto3 when installed, else `aws s3 cp URL -` (the CLI)."""
    location = parse_s3_url(url)
    try:
        import boto3  # optional
    except ImportError:
        boto3 = None
    if boto3 is not None:
        from botocore.config import Config

        config = Config(connect_timeout=options.connect_timeout, read_timeout=options.read_timeout,
                        retries={"total_max_attempts": 1})  # our loop retries, with options.retry
        client = boto3.client("s3", endpoint_url=options.s3_endpoint, config=config)
        kwargs = {"Bucket": location.bucket, "Key": location.key}
        if _range_header(offset, end):
            kwargs["Range"] = _range_header(offset, end)
        try:
            return client.get_object(**kwargs)["Body"], True
        except Exception as exc:
            error = s3_error(url, exc)
            if error is None:
                raise
            raise error from None
    if shutil.which("aws") is None:
        raise FetchError(url, "reading S3 with credentials needs boto3 (pip install boto3) or the aws CLI")
    command = ["aws", "s3", "cp", url, "-"]
    if options.s3_endpoint:
        command += ["--endpoint-url", options.s3_endpoint]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    return process.stdout, False


def _open(url: str, options: FetchOptions, offset: int, end: int | None = None) -> tuple[BinaryIO, bool]:
    scheme = url_scheme(url)
    if scheme == "file":
        try:
            handle = open(local_path(url), "rb")  # noqa: SIM115 - returned to the caller
        except FileNotFoundError:
            raise NotFoundError(url, "no such file") from None
        handle.seek(offset)
        return handle, True
    if scheme == "s3" and not options.s3_anonymous:
        return _open_s3_signed(url, options, offset, end)
    return _open_http(url, options, offset, end)


class RetryingReader(io.RawIOBase):
    """A read-only stream over bytes [start, end) of one URL that reconnects where it stopped after a failure."""

    def __init__(self, url: str, options: FetchOptions | None = None, start: int = 0, end: int | None = None) -> None:
        super().__init__()
        self.url = url
        self.options = options or FetchOptions()
        self.offset = start
        self.end = end
        self.reconnects = 0
        self._stream: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        stream, ranged = _open(self.url, self.options, self.offset, self.end)
        if self.offset and not ranged:  # server ignored Range: drop what was already delivered
            remaining = self.offset
            while remaining:
                skipped = stream.read(min(CHUNK, remaining))
                if not skipped:
                    raise TransientError(self.url, "stream ended before the resume offset")
                remaining -= len(skipped)
        self._stream = stream

    def readinto(self, buffer) -> int:
        """Read once; on a transient failure reconnect at `offset`, at most `retry.retries` times per call."""
        attempt = 0
        while True:
            try:
                if self._stream is None:
                    self._connect()
                wanted = len(buffer) if self.end is None else min(len(buffer), self.end - self.offset)
                if wanted <= 0:
                    return 0
                data = self._stream.read(wanted)
                if not data and getattr(self._stream, "length", None):
                    # http.client reports a connection closed early as a short, empty read
                    raise TransientError(self.url, f"connection closed with {self._stream.length} bytes unread")
                buffer[: len(data)] = data
                self.offset += len(data)
                return len(data)
            except TransientError as exc:
                failure = exc.reason
            except FetchError:
                raise
            except (OSError, http.client.HTTPException) as exc:
                failure = str(exc) or type(exc).__name__
            self._drop()
            attempt += 1
            if attempt > self.options.retry.retries:
                raise TransientError(
                    self.url,
                    f"failed after {attempt} attempts at byte {self.offset} ({failure}); "
                    "check the network or raise `retries`",
                    attempts=attempt,
                )
            self.reconnects += 1
            time.sleep(self.options.retry.delay(attempt - 1))

    def _drop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is discarded anyway
                pass
        self._stream = None

    def close(self) -> None:
        self._drop()
        super().close()


def read_bytes(url: str, options: FetchOptions | None = None) -> bytes:
    """The whole content of a (small) file at `url`; NotFoundError when it does not exist."""
    with RetryingReader(url, options) as reader:
        return reader.read()


def sample_key(member_name: str) -> str | None:
    """The sample key of a tar member (`PMC1_000.jpg` -> `PMC1_000`, archive.keys' rule); None for odd names."""
    parts = split_member_name(member_name)
    return parts[0] if parts else None


def filter_tar(source: BinaryIO, destination: BinaryIO, keys: set[str]) -> int:
    """Copy the members of the tar stream `source` whose sample key is in `keys`; return samples kept."""
    kept: set[str] = set()
    with tarfile.open(fileobj=source, mode="r|") as reader, tarfile.open(fileobj=destination, mode="w|") as writer:
        for member in reader:
            key = sample_key(member.name) if member.isfile() else None
            if key is None or key not in keys:
                continue
            writer.addfile(member, reader.extractfile(member))
            kept.add(key)
    return len(kept)


class _WithTarEnd(io.RawIOBase):
    """A byte range of a tar made readable as a tar of its own: the two zero end blocks appended."""

    def __init__(self, source: io.RawIOBase) -> None:
        super().__init__()
        self._source = source
        self._tail = b"\0" * (2 * TAR_BLOCK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._source.readinto(buffer) if self._source is not None else 0
        if count:
            return count
        self._source = None
        count = min(len(buffer), len(self._tail))
        buffer[:count], self._tail = self._tail[:count], self._tail[count:]
        return count


@dataclass(frozen=True)
class RangePolicy:
    """When to read selected samples by byte ranges instead of the whole shard."""

    max_gap_bytes: int = 1 << 20  # join two ranges closer than this (one request instead of two)
    whole_shard_fraction: float = 0.5  # read everything when the ranges cover more of the shard


def sample_ranges(rows: list[dict], policy: RangePolicy = RangePolicy()) -> list[tuple[int, int]]:
    """Byte ranges [start, end) holding the samples of `rows` (shard index rows: member offsets and sizes).

    A sample's members are contiguous in the tar: from the first member's 512-byte header
    to the end of the last member's data padded to a block. Ranges closer than
    `policy.max_gap_bytes` are joined (the unselected samples in between are dropped later).
    """
    spans = []
    for row in rows:
        members = [(row[f"{m}_offset"], row[f"{m}_size"]) for m in ("image", "txt", "json")]
        start = min(offset for offset, _ in members) - TAR_BLOCK
        end = max(offset + -(-size // TAR_BLOCK) * TAR_BLOCK for offset, size in members)
        spans.append((start, end))
    joined: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if joined and start - joined[-1][1] < policy.max_gap_bytes:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


INDEX_COLUMNS = ["key", "image_offset", "image_size", "txt_offset", "txt_size", "json_offset", "json_size"]


def filter_by_ranges(url: str, index_url: str, keys: set[str], destination: BinaryIO, options: FetchOptions,
                     policy: RangePolicy = RangePolicy()) -> int | None:
    """Write the selected samples of the shard at `url`, reading only their byte ranges.

    The ranges come from the archive's shard index (`NNNNNN.parquet` beside the tar, with
    each member's offset and size). Returns the samples written, or None when there is no
    index or the ranges would cover most of the shard (then the caller streams it all).
    A key the index does not list, or a sample not at its offsets, is a FetchError.
    """
    try:
        index = read_bytes(index_url, options)
    except NotFoundError:
        return None
    import pyarrow.parquet as pq

    # no Arrow thread pool: this short-lived helper could otherwise abort at exit (SIGABRT, "terminate called
    # without an active exception") while Arrow's threads are torn down, turning a good read into a failure
    table = pq.read_table(io.BytesIO(index), columns=INDEX_COLUMNS, use_threads=False, pre_buffer=False)
    every_row = table.to_pylist()
    rows = [row for row in every_row if row["key"] in keys]
    if len(rows) < len(keys):
        unindexed = keys - {row["key"] for row in rows}
        raise missing_keys_error(url, len(unindexed), len(keys), min(unindexed))
    ranges = sample_ranges(rows, policy)
    shard_bytes = max((end for _, end in sample_ranges(every_row, RangePolicy(max_gap_bytes=0))), default=0)
    if shard_bytes and sum(end - start for start, end in ranges) > policy.whole_shard_fraction * shard_bytes:
        return None
    found: set[str] = set()
    stale = f"{index_url} does not match {url}: the index does not belong to this shard (rebuild its unit)"
    with tarfile.open(fileobj=destination, mode="w|") as writer:
        for start, end in ranges:
            with RetryingReader(url, options, start, end) as reader:
                source = io.BufferedReader(_WithTarEnd(reader), CHUNK)
                try:
                    with tarfile.open(fileobj=source, mode="r|") as span:
                        for member in span:
                            key = sample_key(member.name) if member.isfile() else None
                            if key in keys:
                                writer.addfile(member, span.extractfile(member))
                                found.add(key)
                except tarfile.TarError as exc:
                    raise FetchError(url, f"bytes {start}-{end} are not whole tar members ({exc}); {stale}") from None
    missing = keys - found
    if missing:
        raise FetchError(url, f"{len(missing)} selected sample(s) (e.g. {sorted(missing)[0]}) not at their offsets; {stale}")
    return len(found)


def missing_keys_error(url: str, count: int, listed: int, example: str | None = None) -> FetchError:
    """A key list naming samples the shard does not hold: streaming the rest would drop them silently."""
    example = f" (e.g. {example})" if example else ""
    return FetchError(
        url,
        f"{count} of {listed} listed sample(s){example} are not in this shard; the key list or the shard index "
        "is stale: rebuild the shard index, or re-run `biomedica select` (and plan the run again)",
    )


def index_url_of(url: str) -> str | None:
    """The shard index beside a `.tar` (`000000.tar` -> `000000.parquet`), None for other names."""
    return url[: -len(".tar")] + ".parquet" if url.endswith(".tar") else None


def read_keys(path: str) -> set[str]:
    """One key per line (blank lines ignored)."""
    with open(path, encoding="utf-8") as handle:
        return {line.strip() for line in handle if line.strip()}


def pipe_url(url: str, options: FetchOptions, keys_file: str | None = None, ranges: bool = True) -> str:
    """The WebDataset URL OpenCLIP should open for this shard.

    A local shard without a key filter is its path (read directly); anything else is a
    `pipe:` running this module with the same interpreter. `ranges=False` makes a key
    filter read the whole shard (a dense selection: no index lookup).
    """
    if url_scheme(url) == "file" and keys_file is None:
        return local_path(url)
    command = [sys.executable, "-m", "biomedica.net.stream", url, *options.to_argv()]
    if keys_file is not None:
        command += ["--keys", keys_file]
        if not ranges:
            command += ["--no-ranges"]
    return "pipe:" + shlex.join(command)


class _SetsNewOptions(argparse.Action):
    """An option of the old `biomedica.train.fetch` pipe: lines (kept for one release) that sets its new equivalents."""

    def __init__(self, option_strings, dest, targets: tuple[str, ...], **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.targets = targets

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for target in self.targets:
            setattr(namespace, target, values)


def _parse_args(argv: Iterable[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m biomedica.net.stream", description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--keys", help="file with one sample key per line: write only those samples")
    parser.add_argument("--no-ranges", dest="ranges", action="store_false",
                        help="with --keys, always read the whole shard (never byte ranges from its index)")
    parser.add_argument("--auth-env", help="name of the env var holding the token")
    defaults = FetchOptions()
    parser.add_argument("--retries", type=int, default=defaults.retry.retries, help="retries after the first attempt")
    parser.add_argument("--base-delay", type=float, default=defaults.retry.base_delay, help="seconds; doubles per retry")
    parser.add_argument("--max-delay", type=float, default=defaults.retry.max_delay, help="seconds; cap of one wait")
    parser.add_argument("--connect-timeout", type=float, default=defaults.connect_timeout)
    parser.add_argument("--read-timeout", type=float, default=defaults.read_timeout)
    parser.add_argument("--s3-signed", action="store_true", help="use AWS credentials instead of anonymous reads")
    parser.add_argument("--s3-endpoint")
    # deprecated, hidden: --timeout sets both timeouts, --backoff the base delay (old pipe: lines keep working)
    parser.add_argument("--timeout", type=float, action=_SetsNewOptions, targets=("connect_timeout", "read_timeout"),
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--backoff", type=float, action=_SetsNewOptions, targets=("base_delay",),
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser.parse_args(list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    """Write the shard at URL to stdout (filtered by --keys); exit 1 with one line on stderr on failure."""
    if hasattr(signal, "SIGPIPE"):
        # the reader may stop mid-shard (end of an epoch): die quietly with 141, which webdataset ignores
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    out = sys.stdout.buffer
    try:
        options = FetchOptions(
            auth_env=args.auth_env,
            retry=RetryPolicy(retries=args.retries, base_delay=args.base_delay, max_delay=args.max_delay),
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
            s3_anonymous=not args.s3_signed,
            s3_endpoint=args.s3_endpoint,
        )
        with RetryingReader(args.url, options) as reader:
            if args.keys:
                keys = read_keys(args.keys)
                index_url = index_url_of(args.url) if args.ranges else None
                if index_url is None or filter_by_ranges(args.url, index_url, keys, out, options) is None:
                    kept = filter_tar(io.BufferedReader(reader, CHUNK), out, keys)
                    if kept < len(keys):
                        raise missing_keys_error(args.url, len(keys) - kept, len(keys))
            else:
                shutil.copyfileobj(reader, out, CHUNK)
        out.flush()
    except (tarfile.TarError, OSError, ValueError) as exc:
        print(f"biomedica.net.stream: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
