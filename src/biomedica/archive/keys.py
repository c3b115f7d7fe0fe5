"""The sample key: the one rule that makes keys, splits tar member names and reads keys back.

Standard library only, because the `pipe:` shard helper (`biomedica.net.stream`) filters
tar members by key in every DataLoader worker and must start fast.

- figure sample: `<article id>_<n>`, n = the graphic's position in document order, 3+ digits
  (`PMC123_004`, `DOI-10-7554-eLife-00353_000`);
- subfigure sample: `<figure key>_p<panel>` (`PMC123_004_p2`, panel 0-based), read by `parse_key`;
- tar member: `<key>.<ext>`, key = the path up to the first dot of the basename (the split
  WebDataset's `base_plus_ext` makes, so our readers and OpenCLIP's agree).
"""

from __future__ import annotations

import re
from typing import NamedTuple

POSITION_DIGITS = 3
_MEMBER = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")
_KEY = re.compile(r"^(?P<article>.+?)_(?P<position>\d{3,})(?:_p(?P<panel>\d+))?$")


class KeyParts(NamedTuple):
    article_id: str
    position: int
    panel: int | None


def figure_key(article_id: str, position: int) -> str:
    """`PMC123`, 4 -> `PMC123_004`."""
    if position < 0:
        raise ValueError(f"graphic position must be >= 0, got {position}")
    return f"{article_id}_{position:0{POSITION_DIGITS}d}"


def parse_key(key: str) -> KeyParts | None:
    """Article id, graphic position and panel (None for a whole figure); None if `key` is not a sample key."""
    match = _KEY.match(key)
    if match is None:
        return None
    panel = match.group("panel")
    return KeyParts(match.group("article"), int(match.group("position")), int(panel) if panel is not None else None)


def article_of(key: str) -> str:
    """The article id a sample key belongs to (the key itself when it does not follow the rule)."""
    parts = parse_key(key)
    return parts.article_id if parts is not None else key


def sample_article(key: str, pmcid: str | None = None) -> str:
    """The article a sample belongs to: its PMCID when the record has one, else the article part of its key."""
    return pmcid or article_of(key)


def split_member_name(name: str) -> tuple[str, str] | None:
    """`dir/PMC1_000.json` -> (`dir/PMC1_000`, `json`); None for a name without an extension."""
    match = _MEMBER.match(name)
    return (match.group(1), match.group(2)) if match else None
