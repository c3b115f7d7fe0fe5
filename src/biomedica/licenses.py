"""License normalisation: any PMC license statement to a short code and a usage group.

PMC articles state their license in many ways: a Creative Commons URL in
`license/@xlink:href` or `ali:license_ref`, a `license-type` attribute, a URL inside the
license text, a phrase ("Creative Commons Attribution Non-Commercial License"), or a
short code from a file list ("CC BY-NC", "NO-CC CODE"). `normalize_license` reads all of
them and returns one `License` whose `code` looks like "CC BY 4.0" and whose `group`
follows BIOMEDICA: commercial (CC0, CC BY, CC BY-SA, CC BY-ND, public domain),
noncommercial (any NC variant), other (anything else, or no license at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMMERCIAL = "commercial"
NONCOMMERCIAL = "noncommercial"
OTHER = "other"

# the more restrictive the group, the higher its rank: "other" is unknown terms, so it wins
_GROUP_RANK = {COMMERCIAL: 0, NONCOMMERCIAL: 1, OTHER: 2}


@dataclass(frozen=True)
class License:
    """A normalised license: code such as "CC BY 4.0" (None when unknown), its URL, its group."""

    code: str | None
    url: str | None
    group: str


NO_LICENSE = License(code=None, url=None, group=OTHER)

# creativecommons.org/licenses/<kind>/<version> and /publicdomain/<zero|mark>/<version>
_CC_URL = re.compile(
    r"creativecommons\.org/(?:licenses/(?P<kind>[a-z-]+)(?:/(?P<ver>\d+(?:\.\d+)?))?"
    r"|publicdomain/(?P<pd>zero|mark)(?:/(?P<pdver>\d+(?:\.\d+)?))?)",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"(?:https?://)?(?:www\.)?creativecommons\.org/[^\s\"'<>()]*", re.IGNORECASE)
# "CC BY-NC-SA 4.0", "cc-by", "CC BY", "CC0" as written in file lists and license-type attributes
_CC_CODE = re.compile(
    r"\bcc[\s_-]?(?P<zero>0|zero)\b|\bcc[\s_-]?by(?P<mods>(?:[\s_-]?(?:nc|sa|nd))*)(?:[\s_-]+(?P<ver>\d\.\d))?\b",
    re.IGNORECASE,
)
_VERSION = re.compile(r"\b([1-4]\.0)\b")
_NONCOMMERCIAL = re.compile(r"non[\s-]?commercial", re.IGNORECASE)
_SHAREALIKE = re.compile(r"share[\s-]?alike", re.IGNORECASE)
_NODERIVS = re.compile(r"no[\s-]?deriv", re.IGNORECASE)
_PUBLIC_DOMAIN = re.compile(r"public[\s-]domain", re.IGNORECASE)


def _group_for_modifiers(modifiers: tuple[str, ...]) -> str:
    return NONCOMMERCIAL if "NC" in modifiers else COMMERCIAL


def _cc_code(modifiers: tuple[str, ...], version: str | None) -> str:
    # canonical modifier order as Creative Commons writes it: BY-NC-SA, BY-NC-ND
    ordered = [m for m in ("NC", "SA", "ND") if m in modifiers]
    code = "CC " + "-".join(["BY", *ordered])
    return f"{code} {version}" if version else code


def _normalise_version(version: str | None) -> str | None:
    if not version:
        return None
    return version if "." in version else f"{version}.0"


def _from_url(url: str) -> License | None:
    match = _CC_URL.search(url)
    if not match:
        return None
    canonical_url = url.strip().rstrip(".,;")
    if match.group("pd"):
        version = _normalise_version(match.group("pdver")) or "1.0"
        code = f"CC0 {version}" if match.group("pd").lower() == "zero" else f"PDM {version}"
        return License(code=code, url=canonical_url, group=COMMERCIAL)
    kind = match.group("kind").lower()
    parts = kind.split("-")
    if not parts or parts[0] != "by" or any(p not in ("nc", "sa", "nd") for p in parts[1:]):
        return None  # e.g. /licenses/publicdomain/ or a malformed path
    modifiers = tuple(p.upper() for p in parts[1:])
    version = _normalise_version(match.group("ver"))
    return License(code=_cc_code(modifiers, version), url=canonical_url, group=_group_for_modifiers(modifiers))


def _from_code(text: str) -> License | None:
    match = _CC_CODE.search(text)
    if not match:
        return None
    if match.group("zero"):
        return License(code="CC0 1.0" if "1.0" in text else "CC0", url=None, group=COMMERCIAL)
    modifiers = tuple(m.upper() for m in re.findall(r"nc|sa|nd", match.group("mods") or "", re.IGNORECASE))
    return License(code=_cc_code(modifiers, match.group("ver")), url=None, group=_group_for_modifiers(modifiers))


def _from_phrase(text: str) -> License | None:
    """Read "Creative Commons Attribution[-NonCommercial...] [4.0] License" style phrases."""
    lowered = text.lower()
    start = lowered.find("creative commons")
    if start < 0:
        if _PUBLIC_DOMAIN.search(text):
            return License(code="Public Domain", url=None, group=COMMERCIAL)
        return None
    # look only at the license name: from "creative commons" to the next "license"/"licence"
    ends = [pos for pos in (lowered.find("licen", start), lowered.find("dedication", start)) if pos >= 0]
    window = text[start : min(ends) if ends else start + 160]
    window_lower = window.lower()
    if "cc0" in window_lower or "zero" in window_lower or "public domain" in window_lower:
        return License(code="CC0 1.0", url=None, group=COMMERCIAL)
    if "attribution" not in window_lower and not _CC_CODE.search(window):
        return None
    modifiers: list[str] = []
    if _NONCOMMERCIAL.search(window):
        modifiers.append("NC")
    if _SHAREALIKE.search(window):
        modifiers.append("SA")
    if _NODERIVS.search(window):
        modifiers.append("ND")
    coded = _from_code(window)
    if coded is not None and not modifiers:
        return coded  # "Creative Commons (CC BY-NC) license": trust the written code
    version_match = _VERSION.search(window)
    version = version_match.group(1) if version_match else None
    mods = tuple(modifiers)
    return License(code=_cc_code(mods, version), url=None, group=_group_for_modifiers(mods))


def normalize_license(url: str | None = None, text: str | None = None, license_type: str | None = None) -> License:
    """Normalise what an article says about its license; unknown or missing gives group "other".

    Evidence is read from strongest to weakest: the license URL, a Creative Commons URL in
    the text, a short code or phrase in the text, then the `license-type` attribute
    (which is often just "open-access" and then says nothing).
    """
    if url:
        found = _from_url(url)
        if found:
            return found
    if text:
        for url_in_text in _URL_IN_TEXT.findall(text):
            found = _from_url(url_in_text)
            if found:
                return found
        found = _from_phrase(text) or _from_code(text)
        if found:
            return found
    if license_type:
        lowered = license_type.lower()
        found = _from_code(license_type) or _from_url(license_type)
        if found:
            return found
        if "public-domain" in lowered or "public domain" in lowered:
            return License(code="Public Domain", url=url, group=COMMERCIAL)
    return License(code=None, url=url or None, group=OTHER)


def stricter(a: License, b: License) -> License:
    """The more restrictive of two licenses (other > noncommercial > commercial); `a` on a tie."""
    return b if _GROUP_RANK.get(b.group, 2) > _GROUP_RANK.get(a.group, 2) else a
