"""Exception text fit for an error row: no bytes or text of the file that caused it.

Error rows are shared (inspect output, bug reports, published archives), while library
exceptions quote what they choked on: Pillow (`Not a TIFF file (header b'II*...' not valid)`),
`int()` (`invalid literal ...: 'the text'`), codecs (`can't decode byte 0xff`). `reason`
keeps the exception's words and drops what came from the file: bytes literals, quoted
strings, byte values and control characters, and caps the length.
"""

from __future__ import annotations

import re

_BYTES_LITERAL = re.compile(r"""\bb(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_QUOTED = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|‘[^’\n]*’|“[^”\n]*”""")
_BYTE_VALUES = re.compile(r"\b0x[0-9a-fA-F]{2}\b(?:\s+0x[0-9a-fA-F]{2}\b)*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]+")
_SPACE = re.compile(r"\s+")
MAX_REASON_CHARS = 160


def redact(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` with quoted strings, bytes literals and byte values replaced by `…`, capped at `limit`."""
    text = _BYTES_LITERAL.sub("…", text)
    text = _QUOTED.sub("…", text)
    text = _BYTE_VALUES.sub("…", text)
    text = _CONTROL.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` on one line, without control characters, capped at `limit` (for a service's own error text)."""
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def reason(exc: BaseException, limit: int = MAX_REASON_CHARS) -> str:
    """A short, content-free description of `exc`: its class and its redacted message."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{type(exc).__name__}: not valid {exc.encoding} at byte {exc.start}"
    text = redact(str(exc), limit)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
