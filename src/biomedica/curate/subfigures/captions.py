"""Split a compound figure's caption into a shared lead and one subcaption per panel.

One marker grammar serves both the splitter and `curate.panels.caption_panel_letters`.

Markers (labels as written; letters keep their case, positions are lower-cased):
  "(A)", "(a)", "(A and B)", "(A, B)", "(A,B)", "(a-c)"/"(a–c)" (ranges expanded), "(A–B, E–F)",
  "(A′)", "(A1)", "(A1–A3)", "(A upper panel)" -> A, "Panel A", "Panels A and B", "Panel (B)",
  "Panels (B)–(F)"; bare "A.", "A,", "A:", "a)", "A and B,", "A–C:"; Springer/Nature style
  "a Schematic ..., b The ..." (a lone letter then a space); numbers "(1)" only when the caption
  uses no letter markers and numbers its panels from 1 at sentence starts; positions "Left:",
  "Top panel:", "(top)", "Upper left,", "Inset:" only when the caption has no letter or number markers.

Where a marker starts a part (the rule; everything else is a reference and stays in the text):
  * strong position: the start of the caption (after a "Figure 3." label, which is stripped from
    the lead) or right after a sentence end (". ", "? ", "! ", ".) "), "; " or ": ". A strong
    parenthesised / "Panel" marker always starts a part, also when its labels were seen before
    ("(B–E) Data are mean ± SEM" adds that text to B..E).
  * mid-sentence, a parenthesised marker starts a part only when it continues the sequence (its
    first label is the letter after the highest one so far, "a" when none), it is not inside other
    parentheses, not after "see"/"cf."/"panel"/"Fig."/"as in", not followed by punctuation, and
    either its next word starts upper-case or a digit ("... validation (A) Schematic of"), or it
    follows ",", ";", ":" or a function word ("for", "of", "with", "and", "showing", ...) and is not
    followed by "and"/"of"/"show"/... So "(a) GmLOX1, (b) OsLOX1, and (c) AtLOX1" splits, while
    "TEM images (a), size (b)", "for PNP (A), and NNP (B) patients" and "as in (B)" never do.
    "Panel A" in mid-sentence is always a reference.
  * bare letters ("A.", "B,", "a Schematic") start parts only at strong positions (or after a function
    word, mid-sentence, for "of A, LipH; B, LipN" and "of A) X and B) Y"), their letters must rise in
    steps of at most 3 from the last part (the first must be "a" unless the caption starts with it or
    it follows the letters already mentioned), "A." / "A," must be followed by a capital or digit
    ("E. coli", "A, anterior" are not markers), and bare styles never mix with parenthesised ones.
  * a caption whose only part comes from one mid-sentence or bare marker (not at its start) keeps
    no parts: one lone match is too weak to split on.

Never markers: letters inside words or names (IL-6, CD4, p53, HER2, A549, "vitamin A", "type B"),
"(a.u.)", "(n = 5)", "(P < 0.05)", "(Fig. 1A)", "(A/B)", "(S)-" stereo descriptors, "Figure 2A".
Part text is the exact caption text between markers (the marker and a ":"/"." right after it
removed), whitespace-stripped; text after the last marker stays with its panel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DASH = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
_PRIME = "\u2032'"
# one label: a letter (optionally primed or numbered: A′, A1) or a 1-2 digit number
_LABEL = rf"(?:[A-Za-z](?:[1-9]|[{_PRIME}])?(?![A-Za-z0-9])|[1-9][0-9]?(?![0-9A-Za-z]))"
_ITEM = rf"{_LABEL}(?:\s*[{_DASH}]\s*{_LABEL})?"
_SEP = r"(?:\s*[,;&]\s*(?:and\s+)?|\s+(?:and|or)\s+)"
_SPEC = rf"{_ITEM}(?:{_SEP}{_ITEM})*"
_POSWORD = r"(?:upper|lower|top|bottom|middle|center|centre|left|right)"
_PAREN = re.compile(
    rf"\(\s*(?:[Pp]anels?\s+)?(?P<spec>{_SPEC})(?:\s+{_POSWORD}(?:\s+{_POSWORD})?(?:\s+panels?)?)?\s*\)"
)
_PANEL = re.compile(
    rf"\b[Pp]anels?\s+(?:\((?P<pspec>{_SPEC})\)(?:\s*[{_DASH}]\s*\((?P<pend>{_LABEL})\))?|(?P<bspec>{_SPEC}))"
)
_BARE = re.compile(rf"(?<![A-Za-z0-9{_DASH}/'\u2019(])(?P<spec>[A-Za-z](?:\s*[{_DASH}]\s*[A-Za-z])?"
                   rf"(?:{_SEP}[A-Za-z](?:\s*[{_DASH}]\s*[A-Za-z])?)*)(?P<term>[.:,)])(?=\s|$)")
_SPACE = re.compile(rf"(?<![A-Za-z0-9{_DASH}/'\u2019(])(?P<spec>[A-Za-z])\s+(?=[A-Za-z0-9(])")
_POSITION = re.compile(
    rf"(?P<open>\()?(?P<pos>{_POSWORD}(?:[\s{_DASH}]+{_POSWORD})?|insets?)"
    r"(?:\s+(?:panels?|rows?|columns?|images?|graphs?|plots?|parts?))?(?(open)\)|\s*[:.,])",
    re.IGNORECASE,
)
_FIGURE_LABEL = re.compile(
    r"^\s*(?:Supplementary\s+)?(?:Figure|FIGURE|Fig\.?|FIG\.?|Figs?\.?)\s*S?\d+\s*(?:[.:|\u2014\u2013-]\s*|\s+(?=[A-Z(]))"
)
_ABBREVIATIONS = {"fig", "figs", "ref", "refs", "eq", "eqs", "al", "e.g", "i.e", "vs", "cf", "approx", "no",
                  "ca", "resp", "st", "dr", "sp", "spp", "var", "ssp"}
_REFERENCE_WORDS = {"see", "cf", "cf.", "panel", "panels", "part", "parts", "fig", "fig.", "figs", "figs.",
                    "figure", "figures", "eq", "eq.", "equation", "table", "in panel"}
_FUNCTION_WORDS = {
    "for", "of", "with", "in", "at", "to", "from", "by", "on", "under", "between", "within", "into", "after",
    "before", "using", "via", "during", "among", "versus", "vs", "vs.", "and", "or", "showing", "involving",
    "including", "comparing", "containing", "shows", "show", "depicting", "illustrating", "as", "following",
}
_FOLLOW_STOP = {
    "and", "or", "but", "of", "show", "shows", "showed", "shown", "were", "was", "is", "are", "represent",
    "represents", "indicate", "indicates", "respectively", "panel", "panels", "which", "that", "also", "has",
    "have", "had", "versus", "vs",
}
_POS_ALIASES = {"centre": "center", "insets": "inset"}


@dataclass(frozen=True)
class SubCaption:
    """One part of a caption: the panels it names and its own text (marker removed)."""

    labels: tuple[str, ...]  # as written, expanded: "(a-c)" -> ("a", "b", "c"); "Left" -> ("left",)
    text: str


@dataclass(frozen=True)
class CaptionSplit:
    """A caption as lead (shared by all panels) plus parts in caption order."""

    lead: str
    parts: tuple[SubCaption, ...]
    # every panel label the caption names anywhere, references included ("images (a), size (b)"),
    # in caption order; what `caption_panel_letters` counts
    mentioned: tuple[str, ...] = field(default=())

    def labels(self) -> list[str]:
        """Distinct part labels in caption order, as written (the first spelling wins; matching ignores case)."""
        seen: dict[str, str] = {}
        for part in self.parts:
            for label in part.labels:
                seen.setdefault(label.lower(), label)
        return list(seen.values())

    def text_for(self, label: str) -> str | None:
        """Lead + the text of every part naming `label` (case-insensitive), or None when no part names it."""
        wanted = label.lower()
        texts = [p.text for p in self.parts if any(lab.lower() == wanted for lab in p.labels)]
        if not texts:
            return None
        return " ".join(t for t in [self.lead, *texts] if t).strip()


@dataclass
class _Marker:
    start: int
    end: int
    kind: str  # paren | panel | bare | space | position
    labels: tuple[str, ...]
    strong: bool = False
    body: int = 0  # where the part's own text starts (a ":" or "." right after the marker skipped)


def _expand(spec: str) -> tuple[str, ...] | None:
    """Labels of a marker spec ("A and B", "a–c", "A–B, E–F", "A1–A3"), None when it is not a label list."""
    out: list[str] = []
    items = re.split(_SEP, spec.strip())
    for item in items:
        ends = [e.strip() for e in re.split(rf"\s*[{_DASH}]\s*", item.strip())]
        if len(ends) == 1:
            out.append(ends[0])
            continue
        first, last = ends[0], ends[1]
        expanded = _range(first, last)
        if expanded is None:
            return None
        out += expanded
    return tuple(out)


def _range(first: str, last: str) -> list[str] | None:
    if first.isdigit() and last.isdigit():
        a, b = int(first), int(last)
        return [str(n) for n in range(a, b + 1)] if a < b <= a + 30 else None
    if first.isdigit() or last.isdigit():
        return None
    suffix_a, suffix_b = first[1:], last[1:]
    letter_a, letter_b = first[0], last[0]
    if suffix_a.isdigit() and suffix_b.isdigit() and letter_a == letter_b:  # A1–A3
        a, b = int(suffix_a), int(suffix_b)
        return [f"{letter_a}{n}" for n in range(a, b + 1)] if a < b <= a + 30 else None
    if suffix_a != suffix_b or suffix_a.isdigit():  # a1–b4 or A′–D
        return None
    if letter_a.isupper() != letter_b.isupper() or not ord(letter_a) < ord(letter_b) <= ord(letter_a) + 25:
        return None
    return [chr(c) + suffix_a for c in range(ord(letter_a), ord(letter_b) + 1)]


def _base(label: str) -> str:
    """The letter (lower-case) or number of a label: "A′" -> "a", "B2" -> "b", "3" -> "3"."""
    return label if label.isdigit() else label[0].lower()


def _rank(label: str) -> int | None:
    base = _base(label)
    if base.isdigit():
        return int(base)
    return ord(base) - ord("a") + 1 if "a" <= base <= "z" else None


def _paren_spans(text: str) -> list[tuple[int, int]]:
    """Matched (...) spans; an unmatched bracket opens nothing."""
    spans, stack = [], []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            spans.append((stack.pop(), i + 1))
    return spans


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) lies inside parentheses other than its own."""
    return any(s < start < e for s, e in spans)


def _previous_word(text: str, start: int) -> str:
    match = re.search(r"([A-Za-z][A-Za-z.\-]*)\W*$", text[max(0, start - 40):start])
    return match.group(1).lower() if match else ""


def _is_strong(text: str, start: int) -> bool:
    """Whether `start` begins a clause: the caption start or right after a sentence end, ';' or ':'."""
    j = start - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    if j < 0:
        return True
    glued = j == start - 1
    ch = text[j]
    if ch in ";:!?" and not glued:
        return True
    if ch in ")]\u201d\"" and j > 0 and text[j - 1] in ".!?" and not glued:
        return True
    if ch != ".":
        return False
    word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(0, j - 20):j])
    if glued:  # "cancer.A Knockdown": a sentence glued to the next label
        return bool(word) and len(word.group(1)) > 2 and text[j - 1].islower()
    if word:
        token = word.group(1).lower().rstrip(".")
        if token in _ABBREVIATIONS or (len(token) == 1 and text[j - 1].isupper()):  # "Fig.", "et al.", "A."
            return False
    return True


def _next_word(text: str, end: int) -> str:
    match = re.match(r"\s*(\S+)", text[end:])
    return match.group(1) if match else ""


def _candidates(text: str) -> list[_Marker]:
    found: list[_Marker] = []
    for match in _PANEL.finditer(text):
        spec = match.group("pspec") or match.group("bspec")
        labels = _expand(spec)
        if match.group("pend") and labels:
            labels = _range(labels[-1], match.group("pend"))
            labels = tuple(_expand(match.group("pspec"))[:-1]) + tuple(labels) if labels else None
        if labels and not any(lab.isdigit() for lab in labels):
            found.append(_Marker(match.start(), match.end(), "panel", labels))
    for match in _PAREN.finditer(text):
        after = text[match.end():match.end() + 1]
        if after and (after.isalnum() or after in _DASH):  # "(S)-ibuprofen", "(E)2"
            continue
        labels = _expand(match.group("spec"))
        if labels:
            found.append(_Marker(match.start(), match.end(), "paren", labels))
    for match in _BARE.finditer(text):
        labels = _expand(match.group("spec"))
        if labels:
            found.append(_Marker(match.start(), match.end(), "bare:" + match.group("term"), labels))
    for match in _SPACE.finditer(text):
        found.append(_Marker(match.start(), match.start() + 1, "space", (match.group("spec"),)))
    for match in _POSITION.finditer(text):
        if match.group("open") or match.group(0)[-1] in ":.,":
            words = re.split(rf"[\s{_DASH}]+", match.group("pos").lower())
            label = " ".join(_POS_ALIASES.get(w, w) for w in words)
            found.append(_Marker(match.start(), match.end(), "position", (label,)))
    # earliest first, longest first at one start; later overlapping candidates are dropped
    found.sort(key=lambda m: (m.start, -(m.end - m.start)))
    kept: list[_Marker] = []
    for marker in found:
        if kept and marker.start < kept[-1].end:
            continue
        kept.append(marker)
    for marker in kept:
        marker.strong = _is_strong(text, marker.start)
        marker.body = marker.end
        if marker.kind in ("paren", "panel") or marker.kind.startswith("bare"):
            tail = re.match(r"\s*[:.](?!\.)", text[marker.end:]) if marker.kind != "bare:." else None
            if tail:
                marker.body += len(tail.group(0))
    return kept


def _select(text: str, markers: list[_Marker], numbers: bool) -> tuple[list[_Marker], list[bool]]:
    """Markers that start parts (letters or numbers pass) and whether each came from a weak position."""
    spans = _paren_spans(text)
    chosen: list[_Marker] = []
    weak_flags: list[bool] = []
    style: str | None = None
    high = 0  # highest label rank of the parts so far
    mentioned_high = 0
    for marker in markers:
        if marker.kind == "position":
            continue
        is_number = all(lab.isdigit() for lab in marker.labels)
        ranks = [_rank(lab) for lab in marker.labels]
        if is_number != numbers or None in ranks or any(lab.isdigit() for lab in marker.labels) != is_number:
            continue
        inner = _inside(spans, marker.start, marker.end)
        first = ranks[0]
        follow = _next_word(text, marker.end)
        follow_char = text[marker.end:].lstrip()[:1]
        previous = _previous_word(text, marker.start)
        before = text[:marker.start].rstrip()
        after_comma = before.endswith((",", ";", ":"))
        in_sequence = first == high + 1
        kind = marker.kind
        accept = False
        weak = False
        if inner:
            accept = False
        elif kind in ("paren", "panel"):
            compound = any(len(lab) > 1 and lab[1:].isdigit() for lab in marker.labels)
            if style in ("bare", "space"):
                accept = False
            elif marker.strong:
                accept = not compound or first <= high + 1
                if not numbers and not compound and marker.labels[0].lower() == "i" and high != 8 and re.search(
                        r"\(ii\)", text):
                    accept = False  # roman numerals (i), (ii): not panels
            elif kind == "paren" and not compound and in_sequence and follow_char and follow_char not in ",.;:)]":
                if previous in _REFERENCE_WORDS or before.lower().endswith(("as in", "in panel", "see")):
                    accept = False
                else:
                    # "(A) Schematic ..." (a capital or digit starts its text), or after ","/";"/a function
                    # word when the next word is not a verb/conjunction ("in (b) 20 mM", "at (a) 22°C")
                    capital = bool(re.match(r"[A-Z0-9\u0391-\u03a9]", follow)) and previous not in ("and", "or")
                    listed = (after_comma or previous in _FUNCTION_WORDS) and (
                        follow.lower().strip(",.;:") not in _FOLLOW_STOP)
                    accept = capital or listed
                weak = accept
        elif kind.startswith("bare") or kind == "space":
            single = all(len(lab) == 1 for lab in marker.labels)
            term = kind[5:] if kind.startswith("bare") else ""
            family = "space" if kind == "space" else "bare"
            capital = bool(re.match(r"[A-Z0-9(\[\u0391-\u03a9]", follow))
            lower_style = marker.labels[0].islower()
            if numbers or not single or style not in (None, family):
                accept = False
            elif term in (".", ",") and not capital:
                accept = False  # "E. coli", "A, anterior"
            elif kind == "space" and not (capital or lower_style):
                accept = False  # "A diagrammatic", "B cells"
            elif (kind == "space" and marker.strong and chosen and chosen[-1].kind == "space"
                  and chosen[-1].labels[0] == marker.labels[0]):
                # "A 25-year-old patient. A US image shows ... B US image": of two "A"s before "B"
                # the later one is the label, the earlier an article
                chosen[-1] = marker
                continue
            else:
                starts_caption = not text[:marker.start].strip()
                if high:
                    steps = 0 < first - high <= 3
                else:
                    steps = first == 1 or starts_caption or first == mentioned_high + 1
                if marker.strong:
                    accept = steps
                elif kind == "space" and style == "space" and lower_style and first == high + 1:
                    accept = True  # "Light-induced b temperature changes and c ionic current"
                elif kind != "space" and term in (",", ")") and previous in _FUNCTION_WORDS | {"and", "or"}:
                    accept = steps and capital or (steps and term == ")")
                    weak = accept
        if accept:
            chosen.append(marker)
            weak_flags.append(weak or (kind != "paren" and kind != "panel" and bool(text[:marker.start].strip())))
            if style is None:
                style = "space" if kind == "space" else "bare" if kind.startswith("bare") else "paren"
            high = max(high, *[r for r in ranks if r is not None])
        for rank in ranks:
            if rank is not None and kind in ("paren", "panel"):
                mentioned_high = max(mentioned_high, rank)
    # a space-style split needs two letters to be believed
    if style == "space" and len({m.labels[0].lower() for m in chosen}) < 2:
        return [], []
    # one lone weak or bare match (not at the caption start) is too weak to split on
    labels = {lab.lower() for m in chosen for lab in m.labels}
    if chosen and len(labels) == 1 and all(weak_flags):
        return [], []
    if numbers and chosen:
        strong_numbers = {m.labels[0] for m, w in zip(chosen, weak_flags, strict=True) if not w}
        if "1" not in {lab for m in chosen for lab in m.labels} or len(labels) < 2 or not strong_numbers:
            return [], []
    return chosen, weak_flags


def _positions(markers: list[_Marker]) -> list[_Marker]:
    return [m for m in markers if m.kind == "position" and m.strong]


def strip_figure_label(caption: str) -> str:
    """The caption without a leading "Figure 3." / "Fig. 3:" label."""
    return _FIGURE_LABEL.sub("", caption, count=1)


def split_caption(caption: str | None) -> CaptionSplit:
    """Lead + subcaptions of a caption (see the module docstring for the marker rules)."""
    if not caption or not caption.strip():
        return CaptionSplit("", ())
    text = strip_figure_label(caption).strip()
    markers = _candidates(text)
    chosen, _ = _select(text, markers, numbers=False)
    if not chosen:
        chosen, _ = _select(text, markers, numbers=True)
    if not chosen:
        chosen = _positions(markers)
    mentioned: dict[str, str] = {}
    for marker in markers:
        named = marker in chosen or (marker.kind in ("paren", "panel") and not any(lab.isdigit() for lab in marker.labels))
        if named:
            for label in marker.labels:
                mentioned.setdefault(label.lower(), label)
    if not chosen:
        return CaptionSplit(text, (), tuple(mentioned.values()))
    lead = text[:chosen[0].start].strip()
    parts = []
    for index, marker in enumerate(chosen):
        stop = chosen[index + 1].start if index + 1 < len(chosen) else len(text)
        parts.append(SubCaption(marker.labels, text[marker.body:stop].strip()))
    return CaptionSplit(lead, tuple(parts), tuple(mentioned.values()))


def caption_letters(caption: str | None) -> list[str]:
    """Distinct panel letters (lower-case, sorted) the caption names anywhere, references included."""
    split = split_caption(caption)
    named = [*split.mentioned, *(label for part in split.parts for label in part.labels)]
    letters = {label[0].lower() for label in named if re.fullmatch(rf"[A-Za-z][{_PRIME}]?", label)}
    letters |= {label[0].lower() for part in split.parts for label in part.labels if re.fullmatch(r"[A-Za-z]\d", label)}
    return sorted(letters)
