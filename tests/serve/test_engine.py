"""SearchEngine pieces without HTTP: fusion, licence links, attribution lines, the query model's failures."""

from __future__ import annotations

import numpy as np
import pytest

from biomedica.serve.config import ServeConfig
from biomedica.serve.engine import SearchEngine, ServeError, attribution, licence_url, rrf, spec_from_meta


def test_rrf_sums_reciprocal_ranks():
    docs, scores = rrf([np.array([3, 1, 2]), np.array([1, 2, -1]), np.array([2])], k=60)
    assert docs.tolist() == [2, 1, 3]  # 2: 1/63 + 1/62 + 1/61 beats 1: 1/62 + 1/61
    assert scores[0] == pytest.approx(1 / 63 + 1 / 62 + 1 / 61)
    one, _ = rrf([np.array([5, 4, 9])], k=1)
    assert one.tolist() == [5, 4, 9]
    assert rrf([], 60)[0].size == 0


def test_licence_urls_and_model_specs():
    assert licence_url("CC BY 4.0") == "https://creativecommons.org/licenses/by/4.0/"
    assert licence_url("CC BY-NC-SA 3.0") == "https://creativecommons.org/licenses/by-nc-sa/3.0/"
    assert licence_url("CC0 1.0") == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert licence_url("Publisher licence", "https://example.org/terms") == "https://example.org/terms"
    assert licence_url(None) is None
    assert spec_from_meta({"model": "tiny-random", "pretrained": None}) == "tiny-random"
    assert spec_from_meta({"model": "ViT-B-16", "pretrained": "/w/open_clip.bin"}) == "ViT-B-16:/w/open_clip.bin"
    assert spec_from_meta({"model": "ViT-B-16", "pretrained": None}) == "ViT-B-16:random"
    assert spec_from_meta({"model": "timm:vit_small", "pretrained": "hub"}) == "timm:vit_small"


def test_attribution_line():
    record = {"fig_label": "Figure 2", "pmcid": "PMC123", "license": "CC BY 4.0"}
    article = {"title": "A study", "journal": "J Demo", "year": 2020, "doi": "10.1/x",
               "authors": [{"surname": "Smith"}, {"surname": "Doe"}, {"surname": "Roe"}]}
    url = licence_url("CC BY 4.0")
    assert attribution(record, article, url) == (
        "Figure 2 from A study, J Demo (2020), Smith et al., PMC123, doi:10.1/x; "
        "licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)")
    bare = attribution({"pmcid": "PMC9"}, {}, None)
    assert bare == "Figure from PMC9; licence not stated: check the article before reuse"


def test_a_query_model_that_does_not_load_is_one_line_and_keyword_still_works(search_archive):
    engine = SearchEngine(ServeConfig(archive=search_archive, model="no-such-arch:random"))
    with pytest.raises(ServeError) as failed:
        engine.search("retina", "semantic")
    assert failed.value.status == 503 and "--model" in str(failed.value) and "\n" not in str(failed.value)
    assert engine.search("fundus", "keyword")["total"] > 0
