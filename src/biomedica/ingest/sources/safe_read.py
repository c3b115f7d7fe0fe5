"""Read one input file safely: regular files only, inside the input folder, at most `cap` bytes.

An input folder is data a user was handed, not a trusted tree: a FIFO named `fig1.jpg`
blocks `open()` forever, a symlink to `/dev/zero` or `/dev/stdin` reads without end, and a
symlink to `~/.ssh/id_rsa` named `article.xml` would put a secret into `errors/`. So every
source reads files through `read_regular_file`, which checks with `stat` before opening
(a FIFO or device is never opened), opens non-blocking and checks the open file again (the
file may have been swapped since), and reads at most `cap + 1` bytes. A refusal is an
`InputRefused` (an OSError) whose `kind` is the ErrorRecord kind the pipeline records.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

# ErrorRecord kinds of a refused input file
NOT_A_REGULAR_FILE = "not-a-regular-file"
SYMLINK_OUTSIDE_INPUT = "symlink-outside-input"
XML_TOO_LARGE = "xml-too-large"
IMAGE_TOO_LARGE = "image-too-large"

DEFAULT_MAX_XML_BYTES = 64 * 1024**2
DEFAULT_MAX_IMAGE_BYTES = 256 * 1024**2

# what a file is read as -> (its too-large kind, the option that raises the cap)
_ROLES = {
    "xml": (XML_TOO_LARGE, "--max-xml-bytes (IngestConfig.max_xml_bytes)"),
    "image": (IMAGE_TOO_LARGE, "--max-image-bytes (IngestConfig.max_image_bytes)"),
    "package": ("package-too-large", "the package limit (a PMC package is far smaller)"),
    "file": ("file-too-large", "the limit"),
}
_CHUNK = 1024**2


class InputRefused(OSError):
    """An input file that is not read: not a regular file, a symlink out of the input, or too large."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


def _type_name(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _not_regular(path: Path, mode: int, shown: str) -> InputRefused:
    return InputRefused(
        NOT_A_REGULAR_FILE,
        f"{shown} is {_type_name(mode)}, not a regular file, so it is not read (it could block or never end); "
        "replace it with the real file",
    )


def too_large(path: str, size: int, cap: int, role: str) -> InputRefused:
    """The refusal of a `role` file (xml, image, package) of `size` bytes over `cap`."""
    kind, option = _ROLES.get(role, _ROLES["file"])
    return InputRefused(
        kind, f"{path} is {size:,} bytes, over the limit of {cap:,} bytes for one {role} file; raise {option} "
        "if the file is genuine",
    )


def check_inside(path: Path, root: Path | None, shown: str | None = None) -> Path:
    """The real path of `path`; InputRefused when a symlink on the way leads out of `root`."""
    real = Path(os.path.realpath(path))
    if root is not None:
        real_root = Path(os.path.realpath(root))
        if real != real_root and real_root not in real.parents:
            raise InputRefused(
                SYMLINK_OUTSIDE_INPUT,
                f"{shown or path} is a symlink that leads out of the input folder {real_root}, so it is not "
                "read; copy the file into the input folder, or pass the folder it lives in",
            )
    return real


def open_regular_file(path: Path | str, root: Path | str | None) -> BinaryIO:
    """`path` opened for streaming, after the checks of `read_regular_file` (no size cap: the caller streams).

    For files read block by block with bounded memory (a Europe PMC bulk file of many articles).
    """
    return os.fdopen(_open_regular(Path(path), root, None, "file"), "rb")


def _open_regular(path: Path, root: Path | str | None, cap: int | None, role: str) -> int:
    """A blocking read-only descriptor of `path` once it is known to be a regular file inside `root`
    (and at most `cap` bytes when a cap is given); InputRefused otherwise."""
    shown = str(path)
    real = check_inside(path, Path(root) if root is not None else None, shown)
    info = os.stat(real)  # FileNotFoundError for a dangling symlink: the caller's unreadable kind
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(real, info.st_mode, shown)
    if cap is not None and info.st_size > cap:
        raise too_large(shown, info.st_size, cap, role)
    # O_NONBLOCK: if the file was swapped for a FIFO since the stat, open returns at once
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(real, info.st_mode, shown)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_file(path: Path | str, root: Path | str | None, cap: int, role: str = "file") -> bytes:
    """The bytes of `path` (at most `cap`), or InputRefused; OSError for a missing or unreadable file.

    `root`: the input folder that `path` and any symlink it goes through must stay in (None:
    no such rule, e.g. a file list the user named). `role` names the file in messages and
    picks the too-large kind: "xml", "image", "package" or "file".
    """
    path = Path(path)
    fd = _open_regular(path, root, cap, role)
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= cap:
            chunk = os.read(fd, min(_CHUNK, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > cap:  # the file grew after the stat
        raise too_large(str(path), total, cap, role)
    return b"".join(chunks)
