"""Europe PMC bulk files (`<articles>` wrapping many `<article>`): cut article by article, parsed alone.

The bulk files are built at test time from the real articles in ../shared/fixtures/pmc_nxml
(and pmc_wrapped for an OAI-PMH and an efetch article), laid out as Europe PMC writes them.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from biomedica.ingest.jats import bulk, parse_articles
from biomedica.ingest.jats.bulk import BulkSplitter, parse_bulk_article
from biomedica.ingest.jats.xmlload import parse_xml
from biomedica.io.safe_xml import safe_xml_parser

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
NXML = sorted((FIXTURES / "pmc_nxml").glob("*.nxml"))


def article_bytes(path: Path) -> bytes:
    """The `<article>` element of a fixture file as written (its prolog and any wrapper dropped)."""
    from lxml import etree

    root = parse_xml(path.read_bytes(), str(path))
    article = root if root.tag == "article" else next(root.iter("article"))
    data = etree.tostring(article, encoding="utf-8")
    if not article.get("xmlns:xlink") and b"xmlns:xlink" not in data.split(b">", 1)[0]:
        data = data.replace(b"<article", b'<article xmlns:xlink="http://www.w3.org/1999/xlink"', 1)
    return data


def raw_article(path: Path) -> bytes:
    """The fixture's bytes from its `<article` start tag on (what Europe PMC copies into a bulk file)."""
    data = path.read_bytes()
    at = data.find(b"<article")
    while data[at + 8 : at + 9] not in (b" ", b">", b"\n", b"\t", b"\r"):
        at = data.find(b"<article", at + 1)
    return data[at:].rstrip()


def bulk_file(bodies: list[bytes], head: bytes = b"<articles>", tail: bytes = b"</articles>\n") -> bytes:
    return head + b"\n" + b"\n".join(bodies) + b"\n" + tail


def split(data: bytes, source: str = "PMC1_PMC9.xml", cap: int = 64 << 20) -> list:
    return list(BulkSplitter(io.BytesIO(data), source, cap))


def records(data: bytes, source: str = "PMC1_PMC9.xml", cap: int = 64 << 20):
    """(articles, errors) of a bulk file read article by article."""
    parsed, errors = [], []
    for article in split(data, source, cap):
        result = parse_bulk_article(article, source)
        parsed += result.articles
        errors += result.errors
    return parsed, errors


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    return [raw_article(p) for p in NXML[:7]]


def test_each_article_is_one_document_equal_to_the_single_file(bodies):
    parsed, errors = records(bulk_file(bodies))
    assert errors == []
    assert len(parsed) == 7
    for path, got in zip(NXML[:7], parsed):
        alone = parse_articles(path.read_bytes(), str(path)).articles[0]
        assert got.article.article_id == alone.article.article_id
        assert got.article.dialect == "europepmc-bulk"
        assert got.article.title == alone.article.title and got.article.license == alone.article.license
        assert [(f.key, f.fig_label, f.caption, f.mentions, f.graphic_href) for f in got.figures] == [
            (f.key, f.fig_label, f.caption, f.mentions, f.graphic_href) for f in alone.figures
        ]


def test_streamed_records_equal_the_whole_file_read_at_once(bodies):
    data = bulk_file(bodies)
    whole = parse_articles(data, "PMC1_PMC9.xml")
    streamed, errors = records(data)
    assert errors == [] and whole.errors == []
    assert [p.article for p in streamed] == [p.article for p in whole.articles]
    assert [p.figures for p in streamed] == [p.figures for p in whole.articles]


def test_wrapped_fixtures_and_europe_pmc_layout(bodies):
    """An OAI-PMH and an efetch article in one bulk file, and Europe PMC's own layout (ids without PMC)."""
    wrapped = [article_bytes(FIXTURES / "pmc_wrapped" / name) for name in ("PMC10200000.oai.xml", "PMC2832672.efetch.xml")]
    europe = bodies[0]
    assert b'pub-id-type="pmcid">' + NXML[0].stem[3:].encode() + b"<" in europe  # Europe PMC's form: no prefix
    parsed, errors = records(bulk_file([*wrapped, europe]))
    assert errors == []
    assert [p.article.article_id for p in parsed] == ["PMC10200000", "PMC2832672", NXML[0].stem]


@pytest.mark.parametrize("block", [1, 7, 4096])
def test_cutting_does_not_depend_on_where_read_blocks_end(bodies, monkeypatch, block):
    tricky = (
        b"<!-- <article> in a comment --><?pi </article>?>"
        + bodies[0].replace(b"<front>", b"<front><![CDATA[ </article> <article> ]]>", 1)
    )
    data = bulk_file([tricky, bodies[1]], head=b'<?xml version="1.0"?>\n<!DOCTYPE articles [<!ENTITY x "y">]>\n<articles a=">">')
    expected = [a.digest for a in split(data)]
    monkeypatch.setattr(bulk, "_BLOCK", block)
    got = split(data)
    assert [a.digest for a in got] == expected and len(got) == 2 and all(a.error is None for a in got)
    parsed, errors = records(data)
    assert errors == [] and len(parsed) == 2


def test_root_namespaces_and_encoding_carry_into_each_article(bodies):
    body = bodies[0].replace(b' xmlns:xlink="http://www.w3.org/1999/xlink"', b"", 1)
    data = bulk_file([body], head=b'<x:articles xmlns:x="urn:x" xmlns:xlink="http://www.w3.org/1999/xlink">',
                     tail=b"</x:articles>")  # fmt: skip
    parsed, errors = records(data)
    assert errors == [] and parsed[0].figures[0].graphic_href
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><articles><article><front><article-meta>' \
        '<article-id pub-id-type="pmcid">42</article-id><title-group><article-title>Caf\xe9</article-title>' \
        "</title-group></article-meta></front></article></articles>"
    parsed, errors = records(latin.encode("latin-1"))
    assert errors == [] and parsed[0].article.title == "Caf\xe9" and parsed[0].article.article_id == "PMC42"


def test_a_malformed_article_in_the_middle_is_one_error_the_others_are_kept(bodies):
    broken = bodies[1].replace(b"</front>", b"</frnt>", 1)
    parsed, errors = records(bulk_file([bodies[0], broken, bodies[2]]))
    assert [p.article.article_id for p in parsed] == [NXML[0].stem, NXML[2].stem]
    (error,) = errors
    assert error.kind == "xml-syntax" and error.id == NXML[1].stem
    assert f"article 1 ({NXML[1].stem})" in error.message and "PMC1_PMC9.xml" in error.message


def test_an_article_never_closed_is_cut_at_the_next_one(bodies):
    unclosed = bodies[1][: bodies[1].rindex(b"</article>")]
    parsed, errors = records(bulk_file([bodies[0], unclosed, bodies[2]]))
    assert [p.article.article_id for p in parsed] == [NXML[0].stem, NXML[2].stem]
    (error,) = errors
    assert error.kind == "xml-syntax" and "no </article> end tag" in error.message and error.id == NXML[1].stem


def test_an_article_over_the_limit_is_skipped_alone(bodies):
    cap = max(len(bodies[0]), len(bodies[2])) + 1000
    big = bodies[1].replace(b"</body>", b"<p>" + b"x" * (cap + 10) + b"</p></body>", 1)
    parsed, errors = records(bulk_file([bodies[0], big, bodies[2]]), cap=cap)
    assert [p.article.article_id for p in parsed] == [NXML[0].stem, NXML[2].stem]
    assert [e.kind for e in errors] == ["xml-too-large"] and "--max-xml-bytes" in errors[0].message


def test_a_truncated_gzip_keeps_the_articles_before_the_break(bodies):
    data = gzip.compress(bulk_file(bodies[:4]))
    cut = gzip.GzipFile(fileobj=io.BytesIO(data[: len(data) * 3 // 5]))
    slots = list(BulkSplitter(cut, "PMC1_PMC9.xml.gz", 64 << 20))
    ok = [s for s in slots if s.error is None]
    assert 0 < len(ok) < 4 and [s.index for s in slots] == list(range(len(slots)))
    (broken,) = [s for s in slots if s.error]
    assert broken.error[0] == "bulk-truncated" and "truncated or damaged" in broken.error[1]
    assert f"the {len(ok)} article(s) before the break are ingested" in broken.error[1]
    # a plain file cut after an article: one slot says where it breaks off
    plain = bulk_file(bodies[:2], tail=b"")
    slots = split(plain)
    assert [s.error[0] if s.error else None for s in slots] == [None, None, "bulk-truncated"]
    assert "after article 1" in slots[-1].error[1]


def test_other_roots_are_not_bulk_files(bodies):
    assert BulkSplitter(io.BytesIO(NXML[0].read_bytes()), "x", 1 << 20).head is None
    assert BulkSplitter(io.BytesIO(b""), "x", 1 << 20).head is None
    assert split(b"<articles/>") == []
    empty = parse_articles(b"<articles></articles>", "x.xml")
    assert [e.kind for e in empty.errors] == ["no-article"]


def test_the_parser_of_each_article_opens_nothing_the_document_names(tmp_path, bodies):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    head = f'<!DOCTYPE articles [<!ENTITY s SYSTEM "file://{secret}">]><articles>'.encode()
    body = bodies[0].replace(b"</article-title>", b"&s;</article-title>", 1)
    parsed, errors = records(bulk_file([body], head=head))
    assert errors == [] and "TOPSECRET" not in parsed[0].article.title
    assert safe_xml_parser  # the same parser as every other file (jats.xmlload.parse_xml)
