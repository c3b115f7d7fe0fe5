import pyarrow as pa

from biomedica.curate.config import QualityConfig
from biomedica.curate.quality import QUALITY_SCHEMA, assess_quality, caption_body, quality_flags

CONFIG = QualityConfig()
GOOD = "Figure 2. Axial CT of the chest showing a spiculated nodule in the right upper lobe."


def test_good_sample_has_no_flags():
    result = quality_flags(512, 400, GOOD, "Figure 2", CONFIG)
    assert result["flags"] == [] and result["quality_ok"] is True
    assert result["caption_language"] == "en" and result["caption_words"] == 14


def test_tiny_and_extreme_aspect_reasons_name_the_measurement():
    result = quality_flags(40, 600, GOOD, "Figure 2", CONFIG)
    assert result["flags"] == ["tiny-image", "extreme-aspect"]
    assert "40x600 px" in result["reasons"][0] and "15.0:1" in result["reasons"][1]


def test_caption_flags():
    assert quality_flags(300, 300, "Figure 3.", "Figure 3", CONFIG)["flags"] == ["empty-caption"]
    assert quality_flags(300, 300, "", None, CONFIG)["flags"] == ["empty-caption"]
    assert quality_flags(300, 300, "Click here to view.", None, CONFIG)["flags"] == ["boilerplate-caption"]
    assert quality_flags(300, 300, "Fig. 1 Graphical abstract", "Fig. 1", CONFIG)["flags"] == ["boilerplate-caption"]
    assert quality_flags(300, 300, "Fig. 5 Western blot", "Fig. 5", CONFIG)["flags"] == ["short-caption"]
    german = "Abb. 3 Die Verteilung der Patienten nach dem Alter und der Dauer der Erkrankung in den Gruppen"
    result = quality_flags(300, 300, german, "Abb. 3", CONFIG)
    assert result["flags"] == ["non-english"] and result["caption_language"] == "de"


def test_missing_size_is_flagged_not_crashed():
    assert quality_flags(None, None, GOOD, None, CONFIG)["flags"] == ["missing-image-size"]


def test_caption_body_strips_the_label():
    assert caption_body("Figure 2. Axial CT.", "Figure 2") == "Axial CT"
    assert caption_body("Supplementary Figure S1: Flow chart", None) == "Flow chart"


def test_assess_quality_table_is_sorted_and_typed():
    index = pa.table({
        "key": ["PMC2_000", "PMC1_000"], "width": [10, 300], "height": [10, 300],
        "caption": ["Figure 1.", GOOD], "caption_title": [None, None], "fig_label": ["Figure 1", "Figure 2"],
    })
    table = assess_quality(index, CONFIG)
    assert table.schema == QUALITY_SCHEMA
    assert table.column("key").to_pylist() == ["PMC1_000", "PMC2_000"]
    assert table.column("flags").to_pylist() == [[], ["tiny-image", "empty-caption"]]
