"""The held-out evaluation split: which articles evaluation keeps and training must never see.

An article is held out when sha256(`salt:article id`) falls below `fraction` of the hash
range, so every figure of an article lands on the same side, the split is stable as the
archive grows, and eval (`biomedica_archive` adapter), `select` and `train` agree on it
without sharing any state but (fraction, salt). Standard library only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from biomedica.archive.keys import sample_article

DEFAULT_SPLIT_SALT = "biomedica-eval-v1"
DEFAULT_HELD_OUT_FRACTION = 0.05


def is_held_out(article_id: str, fraction: float, salt: str = DEFAULT_SPLIT_SALT) -> bool:
    """True when the article falls in the held-out (test) share: sha256(salt:article_id) below `fraction`."""
    digest = hashlib.sha256(f"{salt}:{article_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass(frozen=True)
class HeldOutSplit:
    """(fraction, salt) of the split; fraction 0 holds nothing out (the split is off)."""

    fraction: float = DEFAULT_HELD_OUT_FRACTION
    salt: str = DEFAULT_SPLIT_SALT

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"held-out fraction must be within [0, 1], got {self.fraction}")
        if not self.salt:
            raise ValueError("held-out split salt must not be empty")

    @property
    def enabled(self) -> bool:
        return self.fraction > 0

    def holds(self, key: str, pmcid: str | None = None) -> bool:
        """True when the sample `key` (of article `pmcid`, if known) belongs to a held-out article."""
        return is_held_out(sample_article(key, pmcid), self.fraction, self.salt)

    def to_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "salt": self.salt}

    @classmethod
    def from_dict(cls, data: Any) -> HeldOutSplit:
        if not isinstance(data, dict) or not isinstance(data.get("fraction"), (int, float)) or not data.get("salt"):
            raise ValueError(f"a held-out split needs a numeric fraction and a salt, got {data!r}")
        return cls(float(data["fraction"]), str(data["salt"]))
