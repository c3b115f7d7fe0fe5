"""Caption language guess from stopwords and scripts (hand-written, no model, no download).

Why not a library: langdetect/langid/fastText bring models or native wheels for what a
caption check needs, which is only "is this English, and if not, roughly what". Figure
captions are technical; stopwords ("the", "of", "and" vs "der", "de", "la", ...) are the
most reliable cheap signal, and non-Latin scripts are recognised by their Unicode blocks.
The guess is "und" (undetermined) when there is too little evidence; only a confident
non-English guess becomes a quality flag.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the of and in to a is with for was were are on by as at from that this or be an which "
        "after between showing shows shown each per using than its their these not after into".split()
    ),
    "de": frozenset(
        "der die das und in den von zu mit sich des auf für ist im dem nicht ein eine als auch "
        "es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über".split()
    ),
    "fr": frozenset(
        "le la les de des du et en un une est pour que qui dans par sur au aux avec ce ces sont "
        "pas plus ou été sa son entre lors chez après".split()
    ),
    "es": frozenset(
        "el la los las de del y en un una es por que con para se al lo como más pero sus le ya "
        "o fue este entre cuando muy sin sobre también".split()
    ),
    "pt": frozenset(
        "o a os as de do da dos das e em um uma é por que com para se ao no na nos nas como mais "
        "mas foi entre quando muito sem sobre também são".split()
    ),
    "it": frozenset(
        "il lo la i gli le di del della dei delle e ed in un una è per che con da si al alla "
        "come più ma sono tra nel nella anche".split()
    ),
    "nl": frozenset(
        "de het een en van in op te met voor is dat die zijn niet aan er door bij ook naar om "
        "als werd worden tussen".split()
    ),
}
# Unicode-name prefixes of scripts that mean "not English" on their own.
SCRIPTS = {
    "CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru",
    "ARABIC": "ar", "HEBREW": "he", "GREEK": "el", "THAI": "th", "DEVANAGARI": "hi",
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# a stopword shared by several languages is weaker evidence for each ("de": fr/es/pt/nl)
_WEIGHTS: dict[str, dict[str, float]] = {
    lang: {w: 1.0 / sum(w in other for other in STOPWORDS.values()) for w in stops} for lang, stops in STOPWORDS.items()
}


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # ISO 639-1 code, or "und"
    confidence: float  # 0..1


def _script_language(text: str) -> tuple[str | None, float]:
    """The non-Latin script most letters belong to, when letters of such scripts dominate."""
    counts: dict[str, int] = {}
    letters = 0
    for char in text:
        if not char.isalpha():
            continue
        letters += 1
        name = unicodedata.name(char, "")
        for prefix, language in SCRIPTS.items():
            if name.startswith(prefix):
                counts[language] = counts.get(language, 0) + 1
                break
    if not letters or not counts:
        return None, 0.0
    language, count = max(counts.items(), key=lambda item: item[1])
    share = count / letters
    # Greek letters (alpha, beta, mu) are common in English captions: need a clear majority
    return (language, share) if share >= 0.5 else (None, 0.0)


def guess_language(text: str, min_words: int = 6) -> LanguageGuess:
    """Guess the language of a caption; "und" below `min_words` words or without stopwords."""
    script_language, share = _script_language(text)
    if script_language is not None:
        return LanguageGuess(script_language, round(share, 3))
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < min_words:
        return LanguageGuess("und", 0.0)
    scores = {lang: sum(weights.get(w, 0.0) for w in words) for lang, weights in _WEIGHTS.items()}
    total = sum(scores.values())
    best = max(scores, key=lambda lang: (scores[lang], lang == "en"))
    if scores[best] == 0:
        return LanguageGuess("und", 0.0)
    # share of the stopword evidence the winner takes, damped when few words are stopwords
    hits = sum(1 for w in words if w in STOPWORDS[best])
    coverage = min(1.0, hits / max(1.0, 0.15 * len(words)))
    return LanguageGuess(best, round(scores[best] / total * coverage, 3))
