"""Quality flags per sample, each with a human-readable reason; nothing is deleted.

Flags (the `flags` list column of `annotations/quality.parquet`):

| flag | when |
|---|---|
| `tiny-image` | a side below `min_side` px or fewer than `min_pixels` pixels (icons, thumbnails, rules) |
| `extreme-aspect` | long side / short side above `max_aspect` (banners, separators, strips) |
| `empty-caption` | no caption text at all, or only the figure label ("Figure 3.") |
| `boilerplate-caption` | a stock phrase instead of a description ("Click here to view", "Graphical abstract") |
| `short-caption` | fewer than `min_caption_words` words after the label |
| `non-english` | the caption language guess is confidently not English (`curate.language`) |
| `missing-image-size` | the record has no width/height (the image could not be measured at ingest) |

`reasons` holds one sentence per flag, with the measured value, so a person can judge it.
"""

from __future__ import annotations

import re

import pyarrow as pa

from biomedica.curate.config import QualityConfig
from biomedica.text import guess_language

QUALITY_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("flags", pa.list_(pa.string())),
        ("reasons", pa.list_(pa.string())),
        ("quality_ok", pa.bool_()),
        ("caption_words", pa.int32()),
        ("aspect_ratio", pa.float32()),
        ("caption_language", pa.string()),
        ("language_confidence", pa.float32()),
    ]
)
QUALITY_INPUT_COLUMNS = ["key", "width", "height", "caption", "caption_title", "fig_label"]
NON_ENGLISH_CONFIDENCE = 0.4

# "Figure 3", "Fig. 2A.", "Supplementary Figure S1:", "Scheme 1", "Abb. 4" ...
_LABEL_ONLY = re.compile(
    r"^\s*(supplementa(ry|l)\s+)?(fig(ure)?s?|scheme|plate|chart|abb|image|img|photo|graph)\.?\s*[a-z]?\d*[a-z]?[\s.:|)-]*$",
    re.IGNORECASE,
)
_LEADING_LABEL = re.compile(r"^\s*(supplementa(ry|l)\s+)?(fig(ure)?s?|scheme|plate)\.?\s*s?\d+[a-z]?[.:|)]?\s*", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^\s*("
    r"click here (to|for) (view|enlarge|larger)[^.]*|"
    r"(view|see|open) (larger|full[- ]size) (image|version|figure)|"
    r"graphical abstract|table of contents (graphic|image)|toc (graphic|image)|"
    r"(image|figure|picture) (not )?available|no (caption|title|legend)( available)?|"
    r"see (the )?(text|main text|legend)( for (details|description))?|"
    r"(un)?titled( image)?|untitled|n/?a|null|none|image|figure|photo(graph)?|"
    r"(supplementary|additional) (file|material|data)( \d+)?|"
    r"(the )?(author|authors)'? photo(graph)?s?|portrait of (the )?author"
    r")\s*[.:]?\s*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)


def caption_body(caption: str | None, fig_label: str | None) -> str:
    """The caption without its leading figure label ("Figure 2." / the record's fig_label)."""
    text = (caption or "").strip()
    if fig_label and text.lower().startswith(fig_label.strip().lower()):
        text = text[len(fig_label.strip()) :]
    text = _LEADING_LABEL.sub("", text, count=1)
    return text.strip(" .:|-\u2013\u2014\t\n")


def quality_flags(
    width: int | None, height: int | None, caption: str | None, fig_label: str | None, config: QualityConfig
) -> dict:
    """One QUALITY_SCHEMA row (without key) for one sample."""
    flags: list[str] = []
    reasons: list[str] = []
    aspect = None
    if not width or not height:
        flags.append("missing-image-size")
        reasons.append("the record has no width/height; re-ingest to measure the image")
    else:
        aspect = max(width, height) / min(width, height)
        if min(width, height) < config.min_side or width * height < config.min_pixels:
            flags.append("tiny-image")
            reasons.append(f"image is {width}x{height} px (minimum side {config.min_side}, minimum {config.min_pixels} px)")
        if aspect > config.max_aspect:
            flags.append("extreme-aspect")
            reasons.append(f"aspect ratio {aspect:.1f}:1 exceeds {config.max_aspect:g}:1")
    full = (caption or "").strip()
    body = caption_body(full, fig_label)
    words = _WORD.findall(body)
    if not full or not body or _LABEL_ONLY.match(full):
        flags.append("empty-caption")
        reasons.append("caption is empty or only the figure label" + (f" ({full!r})" if full else ""))
    elif _BOILERPLATE.match(body):
        flags.append("boilerplate-caption")
        reasons.append(f"caption is a stock phrase, not a description: {body[:60]!r}")
    elif len(words) < config.min_caption_words:
        flags.append("short-caption")
        reasons.append(f"caption has {len(words)} word(s) after the label (minimum {config.min_caption_words})")
    guess = guess_language(body, min_words=config.min_language_words)
    if guess.language not in ("en", "und") and guess.confidence >= NON_ENGLISH_CONFIDENCE:
        flags.append("non-english")
        reasons.append(f"caption looks {guess.language!r}, not English (confidence {guess.confidence:.2f})")
    return {
        "flags": flags,
        "reasons": reasons,
        "quality_ok": not flags,
        "caption_words": len(words),
        "aspect_ratio": aspect,
        "caption_language": guess.language,
        "language_confidence": guess.confidence,
    }


def assess_quality(index: pa.Table, config: QualityConfig = QualityConfig()) -> pa.Table:
    """The quality table (QUALITY_SCHEMA) for shard-index rows with QUALITY_INPUT_COLUMNS."""
    rows = []
    for row in index.select(["key", "width", "height", "caption", "fig_label"]).to_pylist():
        result = quality_flags(row["width"], row["height"], row["caption"], row["fig_label"], config)
        rows.append({"key": row["key"], **result})
    rows.sort(key=lambda r: r["key"])
    return pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA)
