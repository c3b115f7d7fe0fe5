"""One WebDataset shard being written: a deterministic tar plus its Parquet index.

Samples are streamed into a temporary tar as they arrive, so a unit never holds its
image bytes in memory; only the small figure records are buffered for the index. The
finished tar is sorted by key: when samples arrived out of order, `finish` rewrites the
temporary tar once in key order (reading one member at a time), so the output does not
depend on arrival order. Members carry fixed metadata (mtime 0, uid/gid 0, mode 0644),
which makes a shard byte-identical across re-runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.layout import IMAGE_EXTENSIONS
from biomedica.io.atomic import fsync_file, temp_path
from biomedica.records import SHARD_SCHEMA, FigureRecord

# WebDataset splits a member name at the first "." of its basename into key and extension,
# so keys must not contain dots or slashes; we also keep them shell- and URL-safe.
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,90}")
PARQUET_ROW_GROUP_SIZE = 1024  # ~1-10 row groups per shard: cheap to skip with the key stats
# Image members a `select --output shards` shard may hold: the archive's own (layout.IMAGE_EXTENSIONS,
# what the archive stores and its reader accepts) plus "webp" for training-ready copies
# (`--image-format webp`). OpenCLIP's loader reads jpg;png;jpeg;webp. The archive itself keeps
# jpg/png only: ShardWriter's default stays IMAGE_EXTENSIONS; select passes this set.
SELECT_IMAGE_EXTENSIONS = (*IMAGE_EXTENSIONS, "webp")


def sample_key_problem(key: object) -> str | None:
    """Why `key` cannot name a WebDataset sample, or None when it can."""
    if not isinstance(key, str) or not key:
        return f"sample key {key!r} is empty or not a string"
    if not _KEY_PATTERN.fullmatch(key):
        why = "contains '.', which WebDataset reads as the start of the extension" if "." in key else (
            "has characters outside [A-Za-z0-9_-] or is longer than 90 characters"
        )
        return f"sample key {key!r} {why}; keys look like PMC<id>_<nnn>"
    return None


def sample_json_bytes(record: dict[str, Any]) -> bytes:
    """The `.json` member: the figure record (as `FigureRecord.to_dict()`), UTF-8, keys sorted."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")


def member_info(name: str, size: int) -> tarfile.TarInfo:
    """A tar header with fixed owner, mode and time, so equal content gives equal bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


class _HashingWriter:
    """File wrapper that hashes and counts what tarfile writes through it (no re-read)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position


@dataclass
class _Span:
    offset: int
    size: int


@dataclass
class _Sample:
    key: str
    record: dict[str, Any]
    image_name: str
    image: _Span
    txt: _Span
    json: _Span


class _TarStream:
    """An open, uncompressed tar being appended to, with the data offset of every member."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "wb")
        self._writer = _HashingWriter(self._file)
        # plain uncompressed tar; PAX only adds extended headers where ustar cannot say it
        self._tar = tarfile.open(fileobj=self._writer, mode="w", format=tarfile.PAX_FORMAT)  # type: ignore

    def append(self, name: str, data: bytes) -> _Span:
        self._tar.addfile(member_info(name, len(data)), io.BytesIO(data))
        padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        return _Span(offset=self._tar.offset - padded, size=len(data))

    def close(self) -> tuple[int, str]:
        """Write the end-of-archive blocks, fsync; return (size in bytes, sha256 hex)."""
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._writer.position, self._writer.sha256.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass
class FinishedShard:
    """A shard whose tar and index are complete under temporary names, ready to publish."""

    name: str  # "000000.tar"
    samples: int
    tar_bytes: int
    tar_sha256: str
    index_bytes: int
    renames: list[tuple[Path, Path]]  # (temporary, final), tar first


class ShardWriter:
    """Writes one shard (`<unit>.tar`) and its index (`<unit>.parquet`) under temporary names."""

    def __init__(self, tar_path: Path, index_path: Path, row_group_size: int = PARQUET_ROW_GROUP_SIZE,
                 schema: pa.Schema = SHARD_SCHEMA, *, image_extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> None:
        """`schema`: the index schema, SHARD_SCHEMA or one extending it (records.SUBFIGURE_SHARD_SCHEMA,
        TRAINING_SHARD_SCHEMA). `image_extensions`: the image members allowed; the archive's jpg/png by
        default, SELECT_IMAGE_EXTENSIONS for select outputs (training copies may be webp)."""
        self.tar_path = Path(tar_path)
        self.image_extensions = tuple(image_extensions)
        self.index_path = Path(index_path)
        self.row_group_size = row_group_size
        self.schema = schema
        self._stream = _TarStream(temp_path(self.tar_path))
        self._index_tmp = temp_path(self.index_path)
        self._samples: list[_Sample] = []
        self._in_key_order = True

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, record: FigureRecord, image: bytes, image_ext: str) -> None:
        """Append one sample's three members (image, `.txt` = record.caption, `.json` = record.to_dict()) to the temporary tar.

        The index row is `record.index_row()` (a SubfigureRecord's carries its extra columns flat).
        """
        if image_ext not in self.image_extensions:
            raise ValueError(f"image_ext must be one of {self.image_extensions}, got {image_ext!r} for {record.key}")
        if record.image_format is not None and record.image_format != image_ext:
            raise ValueError(
                f"{record.key}: record.image_format is {record.image_format!r} but the bytes are stored as "
                f"{image_ext!r}; set image_format to the stored format"
            )
        if self._samples and record.key < self._samples[-1].key:
            self._in_key_order = False
        key = record.key
        image_name = f"{key}.{image_ext}"
        record_dict = record.to_dict()  # dataclasses.asdict is slow: convert once, use twice
        index_row = record_dict if type(record) is FigureRecord else record.index_row()
        self._samples.append(
            _Sample(
                key=key,
                record=index_row,
                image_name=image_name,
                image=self._stream.append(image_name, bytes(image)),
                txt=self._stream.append(f"{key}.txt", (record.caption or "").encode("utf-8")),
                json=self._stream.append(f"{key}.json", sample_json_bytes(record_dict)),
            )
        )

    def finish(self) -> FinishedShard:
        """Close the tar (rewritten in key order if needed), write the index; both fsync'd."""
        tar_bytes, tar_sha256 = self._stream.close()
        if not self._in_key_order:
            tar_bytes, tar_sha256 = self._rewrite_in_key_order()
        index_tmp = self._index_tmp
        pq.write_table(
            self._index_table(),
            index_tmp,
            compression="zstd",
            row_group_size=self.row_group_size,
        )
        fsync_file(index_tmp)
        return FinishedShard(
            name=self.tar_path.name,
            samples=len(self._samples),
            tar_bytes=tar_bytes,
            tar_sha256=tar_sha256,
            index_bytes=index_tmp.stat().st_size,
            renames=[(self._stream.path, self.tar_path), (index_tmp, self.index_path)],
        )

    def discard(self) -> None:
        """Remove this shard's temporaries (after an error, or when the unit is aborted)."""
        self._stream.discard()
        self._index_tmp.unlink(missing_ok=True)

    def _rewrite_in_key_order(self) -> tuple[int, str]:
        unsorted_path = self._stream.path
        sorted_stream = _TarStream(temp_path(self.tar_path))
        reordered: list[_Sample] = []
        with open(unsorted_path, "rb") as source:

            def read(span: _Span) -> bytes:
                source.seek(span.offset)
                return source.read(span.size)

            for sample in sorted(self._samples, key=lambda s: s.key):
                image = sorted_stream.append(sample.image_name, read(sample.image))
                txt = sorted_stream.append(f"{sample.key}.txt", read(sample.txt))
                json_span = sorted_stream.append(f"{sample.key}.json", read(sample.json))
                reordered.append(_Sample(sample.key, sample.record, sample.image_name, image, txt, json_span))
        result = sorted_stream.close()
        unsorted_path.unlink()
        self._stream = sorted_stream
        self._samples = reordered
        self._in_key_order = True
        return result

    def _index_table(self) -> pa.Table:
        rows = []
        for sample in self._samples:
            row = dict(sample.record)
            row.update(
                shard=self.tar_path.name,
                image_offset=sample.image.offset,
                image_size=sample.image.size,
                txt_offset=sample.txt.offset,
                txt_size=sample.txt.size,
                json_offset=sample.json.offset,
                json_size=sample.json.size,
            )
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=self.schema)
