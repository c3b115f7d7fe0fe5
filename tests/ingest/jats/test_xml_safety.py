"""XML parsing opens nothing a document names, and errors never quote the document (issue 10, item 7).

A DOCTYPE or entity naming a FIFO or `/dev/stdin` blocked the parse forever; these tests
parse in a child process whose stdin is an open, silent pipe, under a timeout, so a
regression fails instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from biomedica.images import ImageConfig, ImageError, prepare_image
from biomedica.ingest.jats import parse_articles

SECRET = "hunter2SECRETtoken"

_CHILD = textwrap.dedent(
    """
    import json, sys
    from biomedica.ingest.jats import parse_articles
    from biomedica.enrich.pubmed_xml import PubmedReplyError, split_articles

    results = {}
    for name, doc in json.loads(sys.argv[1]).items():
        if name.startswith("pubmed-"):
            try:
                results[name] = sorted(split_articles(doc.encode()))
            except PubmedReplyError as exc:
                results[name] = "error"
            continue
        parsed = parse_articles(doc.encode(), name + ".xml")
        results[name] = [a.article.article_id for a in parsed.articles] + [e.kind for e in parsed.errors]
    print(json.dumps(results))
    """
)

_ARTICLE = (
    '<article><front><article-meta><article-id pub-id-type="pmc">PMC1</article-id>'
    "<title-group><article-title>T {ref}</article-title></title-group></article-meta></front></article>"
)


def _documents(fifo: str) -> dict[str, str]:
    head = '<?xml version="1.0"?>\n'
    pubmed = "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>7</PMID></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    return {
        "system-fifo": f'{head}<!DOCTYPE article SYSTEM "{fifo}">' + _ARTICLE.format(ref=""),
        "system-fifo-html-entity": f'{head}<!DOCTYPE article SYSTEM "{fifo}">' + _ARTICLE.format(ref="&nbsp;"),
        "public-stdin": f'{head}<!DOCTYPE article PUBLIC "-//NLM//DTD JATS//EN" "/dev/stdin">'
        + _ARTICLE.format(ref="&nbsp;"),
        "entity-fifo": f'{head}<!DOCTYPE article [<!ENTITY e SYSTEM "{fifo}">]>' + _ARTICLE.format(ref="&e;"),
        "parameter-entity-stdin": f'{head}<!DOCTYPE article [<!ENTITY % e SYSTEM "/dev/stdin"> %e;]>'
        + _ARTICLE.format(ref=""),
        "system-http": f'{head}<!DOCTYPE article SYSTEM "http://127.0.0.1:9/jats.dtd">' + _ARTICLE.format(ref="&nbsp;"),
        "pubmed-system-fifo": f'{head}<!DOCTYPE PubmedArticleSet SYSTEM "{fifo}">{pubmed}',
    }


def test_doctype_and_entities_naming_a_fifo_or_stdin_are_never_opened(tmp_path):
    fifo = tmp_path / "dtd.fifo"
    os.mkfifo(fifo)
    documents = _documents(str(fifo))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    read_end, write_end = os.pipe()  # stdin stays open and silent: reading it would block
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(documents)],
            check=False, stdin=read_end, capture_output=True, text=True, env=env, timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("parsing blocked: the parser opened a FIFO or /dev/stdin that a DOCTYPE named")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name in documents:
        expected = ["7"] if name.startswith("pubmed-") else ["PMC1"]
        assert results[name] == expected, name


def test_a_syntax_error_row_never_quotes_the_document():
    data = (
        b'<?xml version="1.0"?>\n<article>\n<front>\n'
        + f"<{SECRET}>api_key={SECRET}</p>\n".encode()
        + b"</front></article>"
    )
    (error,) = parse_articles(data, "leak.xml").errors
    assert error.kind == "xml-syntax"
    assert SECRET not in error.message
    assert "line 4" in error.message and "tag name mismatch" in error.message


def test_bytes_that_are_not_utf8_are_described_without_their_values():
    (error,) = parse_articles(b"<article><p>\xff\xfeSECRET</p></article>", "bad.xml").errors
    assert error.kind == "xml-syntax" and "invalid" in error.message
    assert "0xFF" not in error.message.upper() and "SECRET" not in error.message


def test_a_root_element_name_is_capped():
    (error,) = parse_articles(f"<{SECRET * 10}/>".encode(), "odd.xml").errors
    assert error.kind == "not-jats" and SECRET * 3 not in error.message


@pytest.mark.parametrize(
    "data",
    [
        SECRET.encode() + b" and the rest of a private file",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d" + SECRET.encode() + b"x" * 40,
    ],
)
def test_image_errors_never_quote_the_file(data):
    with pytest.raises(ImageError) as refused:
        prepare_image(data, "fig1.jpg", ImageConfig())
    message = str(refused.value)
    assert SECRET[:4] not in message and "b'" not in message
