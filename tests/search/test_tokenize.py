"""The biomedical tokenizer: compound terms stay whole, parts still find them, Python and tantivy agree."""

from __future__ import annotations

import pytest
import tantivy

from biomedica.search.filters import SearchFilters
from biomedica.search.keyword import KeywordSearcher, KeywordWriter
from biomedica.search.tokenize import (
    COMPOUND_ANALYZER,
    PARTS_ANALYZER,
    parts,
    query_groups,
    register_analyzers,
    spans,
    tokens,
)

TERMS = ["IL-6", "CD4+", "T2-weighted", "H&E", "18F-FDG", "Ki-67", "COVID-19", "α-SMA"]
TEXT = ("Serum IL-6 rose; CD4+ T cells on T2-weighted MRI, H&E stain, 18F-FDG PET, Ki-67 index, "
        "COVID-19 lungs and α-SMA fibres (CD4+CD25+, p=0.05, Crohn's, TNF-α). End.")


@pytest.mark.parametrize("term", TERMS)
def test_biomedical_terms_are_single_lowercased_tokens(term):
    assert tokens(f"before {term} after.") == ["before", term.lower(), "after"]


def test_parts_split_at_punctuation():
    assert parts("T2-weighted") == ["t2", "weighted"]
    assert parts("IL-6 H&E α-SMA") == ["il", "6", "h", "e", "α", "sma"]


def test_python_and_tantivy_analyzers_agree():
    index = tantivy.Index(tantivy.SchemaBuilder().add_text_field("x").build())
    register_analyzers(index)
    for pattern_name, python in ((COMPOUND_ANALYZER, tokens), (PARTS_ANALYZER, parts)):
        analyzer = _analyzer(pattern_name)
        long_word = "x" * 200
        assert analyzer.analyze(TEXT + " " + long_word) == python(TEXT + " " + long_word)


def _analyzer(name):
    from biomedica.search.tokenize import COMPOUND_PATTERN, MAX_TOKEN_BYTES, PARTS_PATTERN

    pattern = COMPOUND_PATTERN if name == COMPOUND_ANALYZER else PARTS_PATTERN
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(pattern)).filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES)).build())


def test_spans_point_at_the_terms():
    text = "Stained with H&E."
    assert [(text[a:b], t) for a, b, t in spans(text)] == [("Stained", "stained"), ("with", "with"), ("H&E", "h&e")]


def test_query_groups_quoted_phrases_and_unclosed_quotes():
    assert query_groups('IL-6 "T2-weighted images" mri') == [["il-6"], ["t2-weighted", "images"], ["mri"]]
    assert query_groups('"open phrase') == [["open"], ["phrase"]]
    assert query_groups('  ""  ') == []


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kw") / "keyword"
    writer = KeywordWriter(folder, heap=15_000_000)
    rows = [
        {"caption": "Axial T2-weighted MRI of the knee.", "mentions": [], "keywords": []},
        {"caption": "Serum IL-6 and IL-10 levels; CD4+ counts.", "mentions": ["see H&E"], "keywords": ["Ki-67"]},
        {"caption": "18F-FDG PET in COVID-19; α-SMA staining.", "mentions": [], "keywords": []},
        {"caption": "A weighted average of il values.", "mentions": [], "keywords": []},
    ]
    for doc, row in enumerate(rows):
        writer.add(doc, 1, row)
    writer.commit()
    return KeywordSearcher(folder)


@pytest.mark.parametrize("query, doc", [
    ("T2-weighted", 0), ("IL-6", 1), ("CD4+", 1), ("H&E", 1), ("Ki-67", 1), ("18F-FDG", 2), ("COVID-19", 2),
    ("α-SMA", 2), ("il-10", 1),
])
def test_each_compound_term_finds_its_document_only(tiny_index, query, doc):
    hits = tiny_index.search(query, SearchFilters(), 10)
    assert hits.docs.tolist() == [doc] and hits.match == "all"


def test_parts_field_finds_compound_terms_by_a_part(tiny_index):
    weighted = tiny_index.search("weighted", SearchFilters(), 10)
    assert set(weighted.docs.tolist()) == {0, 3}
    assert weighted.docs[0] == 3  # the whole word outranks a part of a compound term
    assert set(tiny_index.search("il", SearchFilters(), 10).docs.tolist()) == {1, 3}


def test_and_then_or_fallback_and_phrases(tiny_index):
    both = tiny_index.search("IL-6 CD4+", SearchFilters(), 10)
    assert both.docs.tolist() == [1] and both.match == "all"
    either = tiny_index.search("IL-6 knee", SearchFilters(), 10)
    assert set(either.docs.tolist()) == {0, 1} and either.match == "any" and either.total == 2
    assert tiny_index.search('"T2-weighted MRI"', SearchFilters(), 10).docs.tolist() == [0]
    assert tiny_index.search('"MRI T2-weighted"', SearchFilters(), 10).total == 0


def test_unicode_scripts_fold_to_what_users_type(tmp_path):
    """Captions write formulas with Unicode scripts (CO₂, Ca²⁺); a search for CO2 or Ca2+ must find them."""
    assert tokens("CO₂ and Ca²⁺ in ﬁbres") == ["co2", "and", "ca2+", "in", "fibres"]
    assert parts("L⁻¹") == ["l", "1"]
    text = "Blood CO₂ rose."
    assert [(text[a:b], t) for a, b, t in spans(text)] == [("Blood", "blood"), ("CO₂", "co2"), ("rose", "rose")]
    writer = KeywordWriter(tmp_path / "keyword", heap=15_000_000)
    writer.add(0, 1, {"caption": "Arterial CO₂ and serum Ca²⁺ over time.", "mentions": [], "keywords": []})
    writer.add(1, 1, {"caption": "Arterial oxygen over time.", "mentions": [], "keywords": []})
    writer.commit()
    searcher = KeywordSearcher(tmp_path / "keyword")
    for query in ("CO2", "co₂", "Ca2+", '"CO2 and serum Ca2+"'):
        assert searcher.search(query, SearchFilters(), 10).docs.tolist() == [0], query
