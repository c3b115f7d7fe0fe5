"""Exception texts in error rows keep the library's words, never the file's bytes or text."""

from biomedica.io.redact import clip, reason, redact


def test_redact_drops_bytes_quotes_and_byte_values():
    text = "Not a TIFF file (header b'II*\\x00SECRET' not valid); literal 'SECRET' near \"SECRET\", bytes 0xFF 0xFE"
    out = redact(text)
    assert "SECRET" not in out and "0xFF" not in out and out.startswith("Not a TIFF file (header …")


def test_reason_of_a_decode_error_gives_the_offset_not_the_byte():
    try:
        b"ok\xffSECRET".decode("utf-8")
    except UnicodeDecodeError as exc:
        assert reason(exc) == "UnicodeDecodeError: not valid utf-8 at byte 2"


def test_clip_keeps_one_short_line():
    assert clip("a\x00b\n  c" + "x" * 500, 20) == "a b c" + "x" * 14 + "…"
