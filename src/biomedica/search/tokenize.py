"""The one biomedical tokenizer: tantivy indexes with it and Python splits queries and highlights with it.

Ordinary word tokenizers cut `IL-6`, `CD4+`, `T2-weighted`, `H&E`, `18F-FDG` at the
punctuation, so a search for `IL-6` also finds every `IL` and every `6`. Here a *compound*
term keeps letters and digits (any script: `α-SMA`) joined by `-`, `&` or `.` together, with
trailing `+` signs (`CD4+`); lower-cased. A second *parts* analysis splits on everything that
is not a letter or digit, so `weighted` still finds `T2-weighted` and `il` finds `IL-6`
(the index has one parts field for that, searched with a lower boost).

The patterns are written so that Python's `re` and Rust's `regex` (the tantivy regex
tokenizer) read them the same way (`[^\\W_]` is "a Unicode letter or digit" in both);
tests check that both give the same terms.

Text is NFKC-folded before either analysis (`fold`), on both the indexed side and the query
side: captions write formulas with Unicode scripts (`CO₂`, `Ca²⁺`, see ingest/jats/mathml.py),
and a user types `CO2` or `Ca2+`; ligatures and full-width letters fold the same way.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

COMPOUND_PATTERN = r"[^\W_]+(?:[-&.][^\W_]+)*\+*"
PARTS_PATTERN = r"[^\W_]+"
MAX_TOKEN_BYTES = 80  # terms this long in UTF-8 (base64, sequences) are dropped, as tantivy's remove_long does
COMPOUND_ANALYZER = "biomedical"
PARTS_ANALYZER = "biomedical_parts"

_COMPOUND = re.compile(COMPOUND_PATTERN)
_PARTS = re.compile(PARTS_PATTERN)
_QUOTED = re.compile(r'"([^"]*)"')


def fold(text: str | None) -> str:
    """NFKC compatibility folding (`CO₂` -> `CO2`, `Ca²⁺` -> `Ca2+`, `ﬁ` -> `fi`): what is indexed and queried."""
    return unicodedata.normalize("NFKC", text or "")


def _short(term: str) -> bool:
    return len(term.encode("utf-8")) < MAX_TOKEN_BYTES


def tokens(text: str) -> list[str]:
    """The compound terms of `text`, lower-cased, as the index holds them."""
    return [t for t in (m.group().lower() for m in _COMPOUND.finditer(fold(text))) if _short(t)]


def parts(text: str) -> list[str]:
    """The letter/digit runs of `text`, lower-cased: what the parts field holds (`t2-weighted` -> `t2`, `weighted`)."""
    return [t for t in (m.group().lower() for m in _PARTS.finditer(fold(text))) if _short(t)]


def spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, term) of every compound term in `text`: for highlighting the terms a query matched.

    Offsets are into `text` as given; the term is folded as the index holds it.
    """
    return [(m.start(), m.end(), fold(m.group()).lower()) for m in _COMPOUND.finditer(text or "")
            if _short(fold(m.group()))]


def query_groups(query: str) -> list[list[str]]:
    """A query as groups of compound terms: each `"quoted phrase"` is one group, every other term its own.

    Every group must match (AND); a group of several terms is a phrase. An unclosed quote is
    read as plain text.
    """
    groups: list[list[str]] = []
    position = 0
    for match in _QUOTED.finditer(query or ""):
        groups += [[t] for t in tokens(query[position : match.start()])]
        phrase = tokens(match.group(1))
        if phrase:
            groups.append(phrase)
        position = match.end()
    groups += [[t] for t in tokens((query or "")[position:].replace('"', " "))]
    return groups


def register_analyzers(index: Any) -> None:
    """Register both analyzers on a tantivy `Index` (each Index object needs them before writer()/searcher())."""
    import tantivy

    for name, pattern in ((COMPOUND_ANALYZER, COMPOUND_PATTERN), (PARTS_ANALYZER, PARTS_PATTERN)):
        analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(pattern))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES))
            .build()
        )
        index.register_tokenizer(name, analyzer)
