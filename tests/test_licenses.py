"""normalize_license and stricter over the license strings found in the real fixtures."""

from __future__ import annotations

import pytest

from biomedica.licenses import License, normalize_license, stricter


@pytest.mark.parametrize(
    ("url", "code", "group"),
    [
        ("http://creativecommons.org/licenses/by/2.0", "CC BY 2.0", "commercial"),  # PMC3166277
        ("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0", "commercial"),
        ("http://creativecommons.org/licenses/by-nc/3.0/", "CC BY-NC 3.0", "noncommercial"),  # PMC3357053
        ("https://creativecommons.org/licenses/by-nc-nd/4.0/", "CC BY-NC-ND 4.0", "noncommercial"),  # PMC9500000
        ("https://creativecommons.org/licenses/by-sa/4.0/", "CC BY-SA 4.0", "commercial"),
        ("https://creativecommons.org/licenses/by-nd/4.0", "CC BY-ND 4.0", "commercial"),
        ("http://creativecommons.org/licenses/by-nd-nc/1.0/", "CC BY-NC-ND 1.0", "noncommercial"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0", "commercial"),  # PMC7289444
        ("http://creativecommons.org/publicdomain/mark/1.0/", "PDM 1.0", "commercial"),  # PMC2599765
    ],
)
def test_urls(url, code, group):
    found = normalize_license(url=url)
    assert (found.code, found.group, found.url) == (code, group, url)


@pytest.mark.parametrize(
    ("text", "code", "group"),
    [
        # PMC3460867 (PLoS, no URL, no version)
        (
            "This is an open-access article distributed under the terms of the Creative Commons Attribution "
            "License, which permits unrestricted use, distribution, and reproduction in any medium, provided "
            "the original author and source are credited.",
            "CC BY",
            "commercial",
        ),
        # PMC13239955 (Wiley: the URL sits inside the text)
        (
            "This is an open access article under the terms of the http://creativecommons.org/licenses/by-nc-nd/4.0/ "
            "License, which permits use and distribution in any medium, provided the original work is properly "
            "cited, the use is non\u2010commercial and no modifications or adaptations are made.",
            "CC BY-NC-ND 4.0",
            "noncommercial",
        ),
        # nihpp-2023.12.31.573776v1 (PMC10802347), phrase read without its URL
        (
            "This work is licensed under a Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 "
            "International License, which allows reusers to copy and distribute the material",
            "CC BY-NC-ND 4.0",
            "noncommercial",
        ),
        # PMC7417471 (Springer: version in the phrase)
        (
            "Open AccessThis article is licensed under a Creative Commons Attribution 4.0 International License, "
            "which permits use, sharing, adaptation",
            "CC BY 4.0",
            "commercial",
        ),
        # PMC12561574 (MDPI: the code in brackets)
        (
            "This article is an open access article distributed under the terms and conditions of the Creative "
            "Commons Attribution (CC BY) license",
            "CC BY",
            "commercial",
        ),
        # PMC3258128 text without its URL
        (
            "This is an Open Access article distributed under the terms of the Creative Commons Attribution "
            "Non-Commercial License, which permits unrestricted non-commercial use",
            "CC BY-NC",
            "noncommercial",
        ),
        # PMC7302504 (PLoS CC0 statement)
        (
            "This is an open access article, free of all copyright, and may be freely reproduced, distributed, "
            "transmitted, modified, built upon, or otherwise used by anyone for any lawful purpose. The work is "
            "made available under the Creative Commons CC0 public domain dedication.",
            "CC0 1.0",
            "commercial",
        ),
        # PMC9000000 (COVID-19 PMC OA subset terms: not an open license)
        (
            "This article is made available via the PMC Open Access Subset for unrestricted research re-use and "
            "secondary analysis in any form or by any means with acknowledgement of the original source.",
            None,
            "other",
        ),
        # PMC2599765 license-p without the URL
        (
            "Publication of EHP lies in the public domain and is therefore without copyright.",
            "Public Domain",
            "commercial",
        ),
    ],
)
def test_texts(text, code, group):
    found = normalize_license(text=text)
    assert (found.code, found.group) == (code, group)


@pytest.mark.parametrize(
    ("value", "code", "group"),
    [
        ("CC BY", "CC BY", "commercial"),  # oa_file_list License column
        ("CC0", "CC0", "commercial"),
        ("NO-CC CODE", None, "other"),
        ("CC BY-NC-SA", "CC BY-NC-SA", "noncommercial"),
        ("cc-by", "CC BY", "commercial"),  # PMC6398430 license-type
        ("open-access", None, "other"),  # says nothing about reuse
        ("public-domain", "Public Domain", "commercial"),
    ],
)
def test_codes_and_license_types(value, code, group):
    found = normalize_license(license_type=value)
    assert (found.code, found.group) == (code, group)


def test_url_wins_over_text_and_type():
    found = normalize_license(
        url="http://creativecommons.org/licenses/by-nc/3.0",
        text="Creative Commons Attribution License",
        license_type="creative-commons",
    )
    assert found == License("CC BY-NC 3.0", "http://creativecommons.org/licenses/by-nc/3.0", "noncommercial")


def test_nothing_gives_other():
    assert normalize_license() == License(None, None, "other")
    assert normalize_license(text="All rights reserved.").group == "other"


def test_stricter():
    by = License("CC BY 4.0", None, "commercial")
    nc = License("CC BY-NC 4.0", None, "noncommercial")
    unknown = License(None, None, "other")
    assert stricter(by, nc) is nc
    assert stricter(nc, by) is nc
    assert stricter(nc, unknown) is unknown
    assert stricter(by, License("CC0 1.0", None, "commercial")) is by  # tie keeps the first
