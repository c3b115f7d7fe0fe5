"""The hand-labelled caption splits (tests/data/subfigures/real_captions.json) stay true to the stored captions.

If the JATS parser changes how it stores a caption, the labels must be redone: this test says which.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from biomedica.ingest.jats import parse_articles

LABELS = Path(__file__).resolve().parents[2] / "data" / "subfigures" / "real_captions.json"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"
DOC = json.loads(LABELS.read_text(encoding="utf-8"))
CAPTIONS = DOC["captions"]


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@cache
def stored_captions(source: str) -> dict[str, str]:
    """fig_id -> caption as biomedica stores it (JATS) or as the package metadata JSON has it."""
    path = FIXTURES / source
    if path.suffix == ".json":
        return {row["figure_id"]: row["caption"] for row in json.loads(path.read_text(encoding="utf-8"))}
    result = parse_articles(path.read_bytes(), source)
    return {figure.fig_id: figure.caption for article in result.articles for figure in article.figures}


def test_label_file_shape():
    assert DOC["made_by"] and DOC["convention"]
    assert len(CAPTIONS) >= 100
    assert sum(bool(c["parts"]) for c in CAPTIONS) >= 80
    assert sum(not c["parts"] and not c["ambiguous"] for c in CAPTIONS) >= 20
    keys = [(c["source"], c["fig_id"]) for c in CAPTIONS]
    assert len(keys) == len(set(keys))
    for caption in CAPTIONS:
        assert caption["notes"] or not caption["ambiguous"], caption["fig_id"]
        for part in caption["parts"]:
            assert part["labels"] and all(isinstance(label, str) and label for label in part["labels"])
            assert part["text"] == normalise(part["text"])


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared/fixtures is not next to the repository")
@pytest.mark.parametrize("entry", CAPTIONS, ids=lambda c: f"{Path(c['source']).name}:{c['fig_id']}")
def test_caption_matches_stored_and_split_is_in_order(entry):
    stored = stored_captions(entry["source"])
    assert entry["fig_id"] in stored, f"{entry['source']}: figure {entry['fig_id']} no longer parsed"
    assert stored[entry["fig_id"]] == entry["caption"], "the stored caption changed: relabel this entry"
    flat = normalise(entry["caption"])
    if not entry["parts"]:
        assert entry["lead"] == flat
        return
    assert flat.startswith(entry["lead"])
    position = len(entry["lead"])
    for part in entry["parts"]:
        found = flat.find(part["text"], position)
        assert found >= 0, f"part {part['labels']} text not found in order"
        position = found + len(part["text"])
    assert position == len(flat), "the last part must run to the end of the caption"
