"""Formulas as readable text and as TeX: MathML and `<tex-math>` to what a caption reader expects.

Captions are training text for a text encoder and search text for people, so a formula
should read as the article prints it. The readable rendering (`readable_mathml`,
`readable_tex`) follows one set of rules:

- identifiers, numbers and scripts in one row run together (`<mi>C</mi><msub><mi>O</mi>
  <mn>2</mn></msub>` gives "CO₂", per-letter `l o g` gives "log"); a space stays only
  before and after a multi-letter word (`log CV`, `0.1 sin`), between two numbers, and
  after an open `_`/`^` script (`D_o exp`);
- binary operators and relations are spaced (`a + b`, `x = 1`, `y ≤ 2`), a sign at the start
  of a row or after an operator or bracket is not (`= −0.5`), a comma is followed by a
  space; inside scripts nothing is spaced (`x_{i+1}`);
- sub/superscripts: Unicode script characters when every character of the script has one
  (digits, + − = ( ): `CO₂`, `Ca²⁺`, `x²`, `L⁻¹`), else `_`/`^` without braces when the
  script is one word or number (`E_NM`, `C^Total`), else `_{...}`/`^{...}`;
- fractions `a/b`, parenthesised only when a side holds an operator (`(a + b)/2`); roots
  `√(x)`; accents follow their base (`x̄` as `x¯`).

Unicode scripts were chosen over `CO2`/`x2` because a flattened `x2` loses the exponent;
the cost is that a keyword search for `CO2` does not find `CO₂` unless the search side
normalises with NFKC (`unicodedata.normalize("NFKC", "CO₂") == "CO2"`).

`mathml_tex` derives TeX from MathML (`\\mathrm{CO}_2`-style; a TeX `<annotation>` inside
`<semantics>` wins), for the `caption_tex` field that keeps formulas for the users who
want them. `readable_tex` applies the readable rules to a `<tex-math>` only formula: it
unwraps `\\text{}`/`\\mathrm{}`, `\\left`/`\\right` and grouping braces, maps common
commands (Greek letters, `\\times`, `\\leq`, ...) and scripts; commands it does not know
stay as written.
"""

from __future__ import annotations

import re

from lxml import etree

from biomedica.ingest.jats.xmlload import local_name

# -- script characters ----------------------------------------------------------------------

_SUPERSCRIPT = dict(zip("0123456789+-−=()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾", strict=True))
_SUBSCRIPT = dict(zip("0123456789+-−=()", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎", strict=True))
_SCRIPT_MAPS = {"^": _SUPERSCRIPT, "_": _SUBSCRIPT}

# operators spaced on both sides when binary; the signs among them may also be unary
_SPACED_OPERATORS = frozenset("=≠<>≤≥≦≧⩽⩾≡≈≅≃∼~∝≪≫→←↔⇒⇐⇔↦+-−±∓×·∙÷∗∈∉⊂⊆⊃⊇∪∩∧∨")
_SIGNS = frozenset("+-−±∓")
_SEPARATORS = frozenset({",", ";"})
_OPENING = frozenset("([{⟨|‖⌊⌈")
_CLOSING = frozenset(")]}⟩|‖!′″%°")
_INVISIBLE = frozenset("\u2061\u2062\u2063\u2064\u200b")
_WRAP_TRIGGERS = _SPACED_OPERATORS | {" "}


def script_text(marker: str, script: str) -> tuple[str, bool]:
    """(rendering of a `_`/`^` script, whether it is open: a letter or digit right after it would extend it)."""
    script = script.strip()
    if not script:
        return "", False
    table = _SCRIPT_MAPS[marker]
    if all(c in table for c in script):
        return "".join(table[c] for c in script), False
    if script.isalnum() or _is_number(script):
        return marker + script, True
    return f"{marker}{{{script}}}", False


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def _wrapped(text: str) -> str:
    """`text` in parentheses when it holds an operator or space and is not already bracketed."""
    if any(c in _WRAP_TRIGGERS for c in text) and not (text[:1] in _OPENING and _closing_matches(text)):
        return f"({text})"
    return text


def _closing_matches(text: str) -> bool:
    """Whether the bracket that opens `text` closes at its last character."""
    depth = 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


# -- readable MathML ------------------------------------------------------------------------

# kinds of a piece's ends, deciding the space between two pieces
_WORD, _NUMBER, _ATOM, _OPEN_SCRIPT, _OPERATOR, _OTHER = range(6)
_TOKENS = frozenset({"mi", "mn", "mo", "mtext", "ms"})
_SILENT = frozenset({"annotation", "annotation-xml", "mphantom", "none", "mprescripts", "malignmark", "maligngroup"})
_ROWS = frozenset({"mrow", "math", "mstyle", "mpadded", "menclose", "merror", "mtd", "maction"})


class _Piece:
    __slots__ = ("first", "fraction", "last", "operator", "text")

    def __init__(self, text: str, first: int, last: int, operator: bool = False, fraction: bool = False) -> None:
        self.text = text
        self.first = first
        self.last = last
        self.operator = operator
        self.fraction = fraction  # a/b: parenthesised when a neighbour in its row is not an operator


_EMPTY = _Piece("", _OTHER, _OTHER)
_local_names: dict[str, str] = {}


def _name(tag: str) -> str:
    name = _local_names.get(tag)
    if name is None:
        name = local_name(tag)
        if len(_local_names) < 4096:
            _local_names[tag] = name
    return name


def _token_text(element: etree._Element) -> str:
    text = "".join(element.itertext()) if len(element) else element.text
    if not text:
        return ""
    text = text.strip()
    return "" if text in _INVISIBLE else text


def _kind_of(text: str, at_start: bool) -> int:
    c = text[0] if at_start else text[-1]
    if c.isdigit():
        return _NUMBER
    if c.isalnum():
        return _ATOM
    return _OTHER


def _token_piece(tag: str, text: str) -> _Piece:
    if not text:
        return _EMPTY
    if tag == "mn":
        return _Piece(text, _NUMBER if text[0].isdigit() else _OTHER, _NUMBER if text[-1].isdigit() else _OTHER)
    if tag == "mo" and not text.isalnum():
        return _Piece(text, _OTHER, _OTHER, operator=True)
    if len(text) > 1 and (tag == "mtext" or tag == "ms" or text.isalpha() or tag == "mo"):
        # a multi-letter word (log, exp, CV, Frequency): kept apart from neighbouring letters
        first = _WORD if text[0].isalnum() else _OTHER
        last = _WORD if text[-1].isalnum() else _OTHER
        return _Piece(text, first, last)
    return _Piece(text, _kind_of(text, True), _kind_of(text, False))


def readable_mathml(math: etree._Element) -> str:
    """The readable text of a MathML element (rules in the module docstring); "" when it renders nothing."""
    return " ".join(_render(math, False).text.split())


_token_pieces: dict[tuple[str, str], _Piece] = {}  # (tag, text) -> piece: formulas repeat their tokens


def _token(tag: str, element: etree._Element) -> _Piece:
    text = _token_text(element)
    piece = _token_pieces.get((tag, text))
    if piece is None:
        piece = _token_piece(tag, text)
        if len(_token_pieces) < 65536:
            _token_pieces[(tag, text)] = piece
    return piece


def _render(element: etree._Element, compact: bool) -> _Piece:
    tag = element.tag
    if tag.__class__ is not str:
        return _EMPTY
    tag = _local_names.get(tag) or _name(tag)
    if tag in _TOKENS:
        return _token(tag, element)
    if tag in _SILENT:
        return _EMPTY
    if tag == "mspace":
        return _Piece(" ", _OTHER, _OTHER)
    if tag in _ROWS:
        pieces = []
        append = pieces.append
        for kid in element:  # tokens (most of the tree) read here, without a recursive call
            kid_tag = kid.tag
            if kid_tag.__class__ is str:
                name = _local_names.get(kid_tag) or _name(kid_tag)
                append(_token(name, kid) if name in _TOKENS else _render(kid, compact))
        return _row(pieces, compact)
    kids = [kid for kid in element if kid.tag.__class__ is str]
    if tag == "semantics":
        return _render(kids[0], compact) if kids else _EMPTY
    n = len(kids)
    if tag in ("msub", "munder", "msup", "msubsup", "munderover", "mover") and n >= 2:
        base = _render(kids[0], compact)
        if tag == "mover":
            over = _render(kids[1], True).text
            if element.get("accent") == "true" or (len(over) == 1 and not over.isalnum()):
                return _Piece(base.text + over, base.first, _OTHER)  # x̄, x̂: the accent follows its base
        markers = {"msub": "_", "munder": "_", "msup": "^", "mover": "^"}.get(tag, "_^")
        scripts = []
        last = base.last
        for marker, kid in zip(markers, kids[1:], strict=False):
            script, is_open = script_text(marker, _render(kid, True).text)
            if script:
                scripts.append(script)
                # a Unicode script closes itself: the base's kind decides the space after (log₂ x, x²y)
                last = _OPEN_SCRIPT if is_open else base.last if script[0] not in "_^" else _OTHER
        if not scripts:  # an empty script (a lone space in the source) adds nothing
            return base
        text = (_wrapped(base.text) if len(base.text) > 1 else base.text) + "".join(scripts)
        return _Piece(text, base.first if text[:1] == base.text[:1] else _OTHER, last, operator=base.operator)
    if tag == "mfrac" and n >= 2:
        top = _render(kids[0], compact).text
        bottom = _render(kids[1], compact).text
        return _Piece(f"{_wrapped(top)}/{_wrapped(bottom)}", _OTHER, _OTHER, fraction=True)
    if tag == "msqrt":
        return _Piece(f"√({_row([_render(kid, compact) for kid in kids], compact).text})", _OTHER, _OTHER)
    if tag == "mroot" and n >= 2:
        radicand = _render(kids[0], compact).text
        index = _render(kids[1], True).text
        return _Piece(f"√[{index}]({radicand})", _OTHER, _OTHER)
    if tag == "mfenced":
        opening = element.get("open", "(")
        closing = element.get("close", ")")
        separator = (element.get("separators", ",") or ",")[0]
        glue = separator if compact or separator not in _SEPARATORS else separator + " "
        inner = glue.join(_render(kid, compact).text for kid in kids)
        return _Piece(opening + inner + closing, _OTHER, _OTHER)
    if tag == "mtable":
        return _Piece("; ".join(t for t in (_render(kid, compact).text for kid in kids) if t), _OTHER, _OTHER)
    if tag == "mtr" or tag == "mlabeledtr":
        return _Piece(" ".join(t for t in (_render(kid, compact).text for kid in kids) if t), _OTHER, _OTHER)
    return _row([_render(kid, compact) for kid in kids], compact)


def _row(pieces: list[_Piece], compact: bool) -> _Piece:
    """Join the pieces of a row with the spacing rules of the module docstring."""
    pieces = [p for p in pieces if p.text]
    if not pieces:
        return _EMPTY
    if len(pieces) == 1:
        return pieces[0]
    out: list[str] = []
    previous: _Piece | None = None
    for i, piece in enumerate(pieces):
        text = piece.text
        if piece.fraction and (
            (previous is not None and not previous.operator) or (i + 1 < len(pieces) and not pieces[i + 1].operator)
        ):
            text = f"({text})"
        if piece.operator and not compact:
            op = text.strip()
            unary = (
                previous is None
                or previous.text[-1:] in _OPENING
                or (previous.operator and previous.text[-1:] not in _CLOSING)
            )
            if op in _SPACED_OPERATORS and not (unary and op in _SIGNS) and i + 1 < len(pieces):
                out.append(" " + op + " ")
                previous = piece
                continue
            if op in _SEPARATORS:
                out.append(op + " ")
                previous = piece
                continue
        elif previous is not None and not previous.operator and _needs_space(previous, piece):
            out.append(" ")
        out.append(text)
        previous = piece
    text = "".join(out)
    first, last = pieces[0], pieces[-1]
    return _Piece(text.strip() if not compact else text, first.first, last.last)


def _needs_space(left: _Piece, right: _Piece) -> bool:
    a, b = left.last, right.first
    if a == _OTHER or b == _OTHER:
        return False
    if a == _OPEN_SCRIPT or a == _WORD or b == _WORD:
        return not (a == _WORD and b == _NUMBER)  # CO2, log2: a word then a number reads as written
    return a == _NUMBER and b == _NUMBER


# -- TeX from MathML ------------------------------------------------------------------------

_TEX_SYMBOLS = {
    "−": "-", "×": "\\times", "±": "\\pm", "∓": "\\mp", "≤": "\\leq", "≥": "\\geq", "≠": "\\neq",
    "≡": "\\equiv", "≈": "\\approx", "∼": "\\sim", "∝": "\\propto", "·": "\\cdot", "∙": "\\cdot",
    "→": "\\rightarrow", "←": "\\leftarrow", "⇒": "\\Rightarrow", "⇔": "\\Leftrightarrow", "∞": "\\infty",
    "∑": "\\sum", "∏": "\\prod", "∫": "\\int", "∂": "\\partial", "∇": "\\nabla", "∈": "\\in",
    "°": "^\\circ", "{": "\\{", "}": "\\}", "%": "\\%", "#": "\\#", "&": "\\&", "_": "\\_", "…": "\\ldots",
    "÷": "\\div", "≪": "\\ll", "≫": "\\gg", "∘": "\\circ", "′": "'", "∗": "*",
    "α": "\\alpha", "β": "\\beta", "γ": "\\gamma", "δ": "\\delta", "ε": "\\varepsilon", "ϵ": "\\epsilon",
    "ζ": "\\zeta", "η": "\\eta", "θ": "\\theta", "ϑ": "\\vartheta", "ι": "\\iota", "κ": "\\kappa",
    "λ": "\\lambda", "μ": "\\mu", "ν": "\\nu", "ξ": "\\xi", "π": "\\pi", "ρ": "\\rho", "σ": "\\sigma",
    "τ": "\\tau", "υ": "\\upsilon", "φ": "\\phi", "ϕ": "\\phi", "χ": "\\chi", "ψ": "\\psi", "ω": "\\omega",
    "Γ": "\\Gamma", "Δ": "\\Delta", "Θ": "\\Theta", "Λ": "\\Lambda", "Ξ": "\\Xi", "Π": "\\Pi",
    "Σ": "\\Sigma", "Φ": "\\Phi", "Ψ": "\\Psi", "Ω": "\\Omega",
}  # fmt: skip
_TEX_FUNCTIONS = frozenset(
    {
        "log", "ln", "lg", "exp", "sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh", "arcsin",
        "arccos", "arctan", "lim", "max", "min", "sup", "inf", "det", "dim", "arg", "deg", "gcd", "ker", "Pr",
    }
)  # fmt: skip
_TEX_ACCENTS = {"¯": "\\bar", "‾": "\\overline", "^": "\\hat", "ˆ": "\\hat", "~": "\\tilde", "˜": "\\tilde",
                "˙": "\\dot", "¨": "\\ddot", "→": "\\vec", "⃗": "\\vec"}  # fmt: skip
_ONE_COMMAND = re.compile(r"\\[A-Za-z]+(?:\{[^{}]*\})?")
_TEX_COMMAND_END = re.compile(r"\\[A-Za-z]+$")


def mathml_tex(math: etree._Element) -> str:
    """TeX for a MathML element: its TeX `<annotation>` when present, else derived from the MathML."""
    for annotation in math.iter("{*}annotation", "annotation"):
        if (annotation.get("encoding") or "").lower() in ("application/x-tex", "tex", "latex", "text/x-latex"):
            text = (annotation.text or "").strip()
            if text:
                return " ".join(text.split())
    return " ".join(_tex(math).split())


def _tex_chars(text: str) -> str:
    return "".join(_TEX_SYMBOLS.get(c, c) for c in text)


def _group(text: str) -> str:
    """`text` as one TeX argument: braces unless it is one character or one command."""
    if len(text) == 1 or _ONE_COMMAND.fullmatch(text):
        return text
    return "{" + text + "}"


def _tex_join(parts: list[str]) -> str:
    out: list[str] = []
    for part in parts:
        if not part:
            continue
        if out and _TEX_COMMAND_END.search(out[-1]) and part[0].isalpha():
            out.append(" ")  # \alpha x, not \alphax
        out.append(part)
    return "".join(out)


def _tex(element: etree._Element) -> str:
    tag = element.tag
    if tag.__class__ is not str:
        return ""
    tag = _name(tag)
    if tag in ("mi", "mn", "mo", "mtext", "ms"):
        text = _token_text(element)
        if not text:
            return ""
        if tag == "mtext" or tag == "ms":
            return "\\text{" + text.replace("{", "\\{").replace("}", "\\}") + "}"
        if tag == "mi" and len(text) > 1:
            return "\\" + text if text in _TEX_FUNCTIONS else "\\mathrm{" + text + "}"
        return _tex_chars(text)
    if tag in _SILENT:
        return ""
    if tag == "mspace":
        return "\\ "
    kids = [kid for kid in element if kid.tag.__class__ is str]
    if tag == "semantics":
        return _tex(kids[0]) if kids else ""
    parts = [_tex(kid) for kid in kids]
    n = len(parts)
    if tag in ("msub", "munder") and n >= 2:
        return _group(parts[0]) + ("_" + _group(parts[1]) if parts[1] else "")
    if tag == "msup" and n >= 2:
        return _group(parts[0]) + ("^" + _group(parts[1]) if parts[1] else "")
    if tag in ("msubsup", "munderover") and n >= 3:
        text = _group(parts[0])
        text += "_" + _group(parts[1]) if parts[1] else ""
        return text + ("^" + _group(parts[2]) if parts[2] else "")
    if tag == "mover" and n >= 2:
        over = _token_text(kids[1]) if _name(kids[1].tag) == "mo" else ""
        accent = _TEX_ACCENTS.get(over)
        if accent:
            return accent + "{" + parts[0] + "}"
        return "\\overset{" + parts[1] + "}{" + parts[0] + "}"
    if tag == "mfrac" and n >= 2:
        return "\\frac{" + parts[0] + "}{" + parts[1] + "}"
    if tag == "msqrt":
        return "\\sqrt{" + _tex_join(parts) + "}"
    if tag == "mroot" and n >= 2:
        return "\\sqrt[" + parts[1] + "]{" + parts[0] + "}"
    if tag == "mfenced":
        opening = _tex_chars(element.get("open", "("))
        closing = _tex_chars(element.get("close", ")"))
        separator = (element.get("separators", ",") or ",")[0]
        return "\\left" + (opening or ".") + separator.join(parts) + "\\right" + (closing or ".")
    if tag == "mtable":
        return "\\begin{matrix}" + " \\\\ ".join(p for p in parts if p) + "\\end{matrix}"
    if tag == "mtr" or tag == "mlabeledtr":
        return " & ".join(parts)
    return _tex_join(parts)


# -- readable TeX ---------------------------------------------------------------------------

_TEX_READABLE = {name: char for char, name in _TEX_SYMBOLS.items() if name.startswith("\\") and name[1:].isalpha()}
_TEX_READABLE.update({
    "\\le": "≤", "\\ge": "≥", "\\ne": "≠", "\\to": "→", "\\cdots": "⋯", "\\dots": "…", "\\degree": "°",
    "\\textdegree": "°", "\\circ": "°", "\\prime": "′", "\\ast": "∗", "\\bullet": "•", "\\ell": "ℓ",
    "\\varphi": "φ", "\\epsilon": "ε", "\\leqslant": "≤", "\\geqslant": "≥", "\\mp": "∓", "\\sim": "∼",
    "\\micro": "μ", "\\upmu": "μ", "\\upalpha": "α", "\\upbeta": "β", "\\upgamma": "γ", "\\updelta": "δ",
    "\\AA": "Å", "\\%": "%", "\\#": "#", "\\&": "&", "\\_": "_", "\\{": "\u0091", "\\}": "\u0092",
})  # fmt: skip
_TEX_READABLE.update({"\\" + name: name for name in _TEX_FUNCTIONS})
_TEX_SIZES = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?(?![A-Za-z])\s*")
_TEX_DEGREE = re.compile(r"\^\s*(?:\{\s*\\circ\s*\}|\\circ(?![A-Za-z]))")
_TEX_SPACES = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])|~")
_TEX_WRAPPERS = re.compile(
    r"\\(?:text|mathrm|textrm|mathit|textit|mathbf|textbf|boldsymbol|bm|mathsf|textsf|mathtt|texttt|mbox|"
    r"operatorname|mathnormal|textnormal|rm|it|bf|mathbb|mathcal|mathscr|mathfrak)\s*\{([^{}]*)\}"
)
_TEX_SWITCHES = re.compile(r"\\(?:rm|it|bf|sf|tt|displaystyle|textstyle|scriptstyle|mathrm|mathit)(?![A-Za-z])\s*")
_TEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEX_SQRT = re.compile(r"\\sqrt\s*(?:\[([^\]]*)\])?\s*\{([^{}]*)\}")
_TEX_ACCENT_CMD = re.compile(r"\\(bar|overline|hat|widehat|tilde|widetilde|dot|vec)\s*\{([^{}]*)\}")
_TEX_ACCENT_MARK = {"bar": "¯", "overline": "¯", "hat": "^", "widehat": "^", "tilde": "~", "widetilde": "~",
                    "dot": "˙", "vec": "→"}  # fmt: skip
_TEX_SCRIPT_GROUP = re.compile(r"([_^])\s*\{([^{}]*)\}")
_TEX_SCRIPT_CHAR = re.compile(r"([_^])\s*([A-Za-z0-9]|[^\x00-\x7f\s{}\\\ue000\ue001])")
_TEX_GROUP = re.compile(r"(?<![\\A-Za-z\]])\{([^{}]*)\}")
_TEX_COMMAND = re.compile(r"\\[A-Za-z]+|\\[%#&_{}]")
_TEX_BRACKET_SPACE = re.compile(r"(?<=[(\[]) | (?=[)\]])")  # TeX ignores spaces: none inside brackets
_OPEN_BRACE, _CLOSE_BRACE = "\ue000", "\ue001"  # braces a script keeps, protected from unwrapping


def readable_tex(tex: str) -> str:
    """Readable text of a TeX formula (already stripped of PMC's wrapper and `$`): see the module docstring."""
    text = _TEX_DEGREE.sub("°", _TEX_SPACES.sub(" ", _TEX_SIZES.sub("", tex)))
    text = _TEX_SWITCHES.sub("", text)
    text = _TEX_COMMAND.sub(lambda m: _TEX_READABLE.get(m.group(), m.group()), text)
    for _ in range(64):  # innermost groups first; each pass removes one nesting level
        before = text
        text = _TEX_WRAPPERS.sub(r"{\1}", text)
        text = _TEX_FRAC.sub(lambda m: f"{_wrapped(_squash(m.group(1)))}/{_wrapped(_squash(m.group(2)))}", text)
        text = _TEX_SQRT.sub(lambda m: (f"√[{m.group(1)}]" if m.group(1) else "√") + f"({m.group(2).strip()})", text)
        text = _TEX_ACCENT_CMD.sub(lambda m: m.group(2).strip() + _TEX_ACCENT_MARK[m.group(1)], text)
        text = _TEX_SCRIPT_GROUP.sub(_tex_script, text)
        text = _TEX_GROUP.sub(r"\1", text)
        if text == before:
            break
    text = _TEX_SCRIPT_CHAR.sub(_tex_script, text)
    text = text.replace(_OPEN_BRACE, "{").replace(_CLOSE_BRACE, "}").replace("\u0091", "{").replace("\u0092", "}")
    return _TEX_BRACKET_SPACE.sub("", " ".join(text.split()))


def _squash(text: str) -> str:
    return " ".join(text.split())


def _tex_script(match: re.Match) -> str:
    script = "".join(match.group(2).split())
    rendered, _ = script_text(match.group(1), script)
    return rendered.replace("{", _OPEN_BRACE).replace("}", _CLOSE_BRACE)
