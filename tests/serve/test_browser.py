"""The search page driven in a real browser: Playwright with Debian's Chromium (/usr/bin/chromium).

As tests/annotate/test_browser.py: CI installs the browser itself (`apt-get install -y chromium`,
`pip install playwright`); the browser tests are skipped only when /usr/bin/chromium is absent and
`playwright install` is never used. The archive is the demo corpus with one article whose caption
and title carry markup (publisher text is untrusted), ingested, embedded with the tiny-random
model and indexed: real tantivy, faiss, Parquet and a uvicorn server on a free 127.0.0.1 port.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

import pytest

from biomedica.testing.web import CHROMIUM, CHROMIUM_ARGS, CHROMIUM_MISSING, serving

from .conftest import IMG, MARKED_PMCID, SCRIPT, TITLE, UNIQUE_WORD

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=CHROMIUM_MISSING
)

def _page_html() -> str:
    return resources.files("biomedica.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def test_page_pins_its_script_hash_and_loads_nothing_from_elsewhere():
    """The CSP names the inline script's sha256: an edit to the script must update it (or the page is dead)."""
    html = _page_html()
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1 and "<script src" not in html
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html, (
        "the CSP meta tag's script hash is stale: set it to " f"'sha256-{digest}'")
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the page must load nothing from another host"
    assert ".innerHTML" not in scripts[0] and "insertAdjacentHTML" not in scripts[0] and "document.write" not in scripts[0]




@pytest.fixture(scope="module")
def server(search_archive):
    from biomedica.cli.serve import compose_app
    from biomedica.serve.config import ServeConfig

    app, annotate = compose_app(ServeConfig(archive=search_archive, port=0))  # as `biomedica serve` runs it
    assert annotate
    with serving(app) as url:
        yield url


def _api(url: str, path: str, **params):
    import httpx

    response = httpx.get(url + path, params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def _search(page, text: str) -> None:
    """Type `text` into the search box the keyboard way and wait for the answer.

    Predicates are functions, never expression strings: the page's CSP forbids eval, and Playwright
    evaluates expression strings with it.
    """
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("/")  # `/` focuses the search box
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    _wait_answer(page)


def _wait_answer(page) -> None:
    page.wait_for_function("() => document.getElementById('status').dataset.total !== undefined && "
                           "!document.getElementById('status').textContent.startsWith('searching')")


def _shown_keys(page, grid: str = "#results") -> list[str]:
    return page.eval_on_selector_all(f"{grid} .result", "buttons => buttons.map(b => b.dataset.key)")


@pytest.mark.slow
@needs_chromium
def test_search_filter_figure_similar_image_export_in_chromium(server, tmp_path):
    import pyarrow.parquet as pq
    from playwright.sync_api import expect, sync_playwright

    url = server
    xss_hits = _api(url, "/api/search", q=UNIQUE_WORD, mode="keyword")
    xss_key = xss_hits["results"][0]["key"]
    assert xss_key.startswith(MARKED_PMCID + "_")

    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        expect(page.locator("#f-license_group input")).to_have_count(3)  # facets loaded
        expect(page.locator("#annotate-link")).to_be_visible()  # /api/info says annotate is mounted

        # a caption word finds its figure first; the marked-up caption is shown as text, never run
        _search(page, UNIQUE_WORD)
        assert _shown_keys(page)[0] == xss_key
        first_caption = page.locator("#results .result .caption").first
        expect(first_caption).to_contain_text(SCRIPT)
        expect(first_caption).to_contain_text(IMG)
        page.wait_for_function("() => [...document.querySelectorAll('#results img')].every(i => i.complete)")

        # keyboard: focus the first result, arrows move, Enter opens, Esc closes and gives focus back
        page.locator("#results .result").first.focus()
        page.keyboard.press("Enter")
        dialog = page.locator("#figure-view")
        expect(dialog).to_be_visible()
        expect(page.locator("#figure-caption")).to_contain_text(SCRIPT)
        expect(page.locator("#figure-title")).to_contain_text(TITLE)
        page.wait_for_function("() => document.getElementById('figure-image').complete && "
                               "document.getElementById('figure-image').naturalWidth > 0")
        # the paragraph citing "Fig. 1" is listed and the citing sentence is marked
        expect(page.locator("#figure-mentions mark.cited").first).to_contain_text("Fig. 1")
        expect(page.locator("#figure-attribution")).not_to_be_empty()
        expect(page.locator("#figure-license")).to_contain_text("CC BY-NC")
        page.click("#copy-attribution")
        expect(page.locator("#copy-status")).to_have_text("copied")
        assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#figure-attribution")
        links = page.eval_on_selector_all("#figure-links a", "as => as.map(a => a.href)")
        assert f"https://pmc.ncbi.nlm.nih.gov/articles/{MARKED_PMCID}/" in links
        assert all(link.startswith("https://") for link in links)
        # more like this: image neighbours of this figure, each opens in the same view
        expect(page.locator("#similar-grid .result").first).to_be_visible()
        similar = _shown_keys(page, "#similar-grid")
        assert similar and xss_key not in similar
        page.locator("#similar-grid .result").first.click()
        expect(page.locator("#figure-meta")).to_contain_text(similar[0])
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert page.evaluate("document.activeElement.dataset.key") == xss_key  # focus back on the opened result
        page.hover("#results .result")
        page.wait_for_timeout(300)  # give a stray onerror or onmouseover time to fire
        assert page.evaluate("window.__xss") is None
        assert page.locator("script").count() == 1  # the page's own, nothing created
        assert page.locator("img[src=x], img[onerror], [onmouseover], #results b, #figure-view b").count() == 0
        assert dialogs == []

        # the mode switch searches again: hybrid (keyword + caption and image vectors) keeps the figure first
        page.check("input[name=mode][value=hybrid]")
        _wait_answer(page)
        assert _shown_keys(page)[0] == xss_key
        page.check("input[name=mode][value=keyword]")
        _wait_answer(page)

        # arrow keys move through the grid
        _search(page, "plot")
        keys = _shown_keys(page)
        assert len(keys) >= 2
        page.locator("#results .result").first.focus()
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.dataset.key") == keys[1]

        # a filter: the count drops to what the API says, and the facet counts are the API's
        total = int(page.locator("#status").get_attribute("data-total"))
        facets = _api(url, "/api/facets", q="plot")
        facets = facets.get("facets", facets)
        group = next(g for g, n in facets["license_group"].items() if 0 < n < total)
        expect(page.locator(f"#f-license_group label:has(input[value={group}]) .count")).to_have_text(
            f" ({facets['license_group'][group]})")
        expected = _api(url, "/api/search", q="plot", mode="keyword", license_group=group)["total"]
        assert expected < total
        page.check(f"input[name=license_group][value={group}]")
        expect(page.locator("#status")).to_have_attribute("data-total", str(expected))
        shown = _shown_keys(page)

        # export: the downloaded Parquet manifest holds the keys the page shows
        with page.expect_download() as download_info:
            page.click("#export")
        target = tmp_path / "export.parquet"
        download_info.value.save_as(target)
        exported = pq.read_table(target).column("key").to_pylist()
        assert set(shown) <= set(exported) and len(exported) == expected
        page.uncheck(f"input[name=license_group][value={group}]")
        _wait_answer(page)

        # an annotation filter (curate's dedup): canonical-only hides near-duplicates as the API does
        _search(page, "of")
        everything = int(page.locator("#status").get_attribute("data-total"))
        assert everything > 20  # two pages: Next shows the API's second page
        first_page = _shown_keys(page)
        page.click("#next")
        expect(page.locator("#page-info")).to_have_text(f"21–{min(40, everything)} of {everything}")
        second = _api(url, "/api/search", q="of", mode="keyword", offset=20, limit=20)["results"]
        assert _shown_keys(page) == [r["key"] for r in second] and not set(first_page) & set(_shown_keys(page))
        page.click("#prev")
        expect(page.locator("#page-info")).to_have_text(f"1–20 of {everything}")
        canonical = _api(url, "/api/search", q="of", mode="keyword", canonical_only="true")["total"]
        assert canonical < everything
        page.check("#canonical_only")
        expect(page.locator("#status")).to_have_attribute("data-total", str(canonical))
        page.uncheck("#canonical_only")
        expect(page.locator("#status")).to_have_attribute("data-total", str(everything))

        # image query by upload: a figure's own image comes back first
        import httpx

        probe = keys[0]
        image = httpx.get(f"{url}/api/image/{probe}", params={"size": "full"}, timeout=30)
        suffix = ".png" if image.headers["content-type"].endswith("png") else ".jpg"
        upload = tmp_path / f"query{suffix}"
        upload.write_bytes(image.content)
        page.set_input_files("#image-input", str(upload))
        expect(page.locator("#query-image")).to_be_visible()
        page.wait_for_function("() => document.getElementById('status').textContent.includes('the image')")
        assert _shown_keys(page)[0] == probe

        # and by drag and drop onto the drop zone
        dropped = keys[1]
        data = httpx.get(f"{url}/api/image/{dropped}", params={"size": "full"}, timeout=30)
        transfer = page.evaluate_handle(
            "([bytes, type]) => { const t = new DataTransfer();"
            " t.items.add(new File([new Uint8Array(bytes)], 'dropped', { type })); return t; }",
            [list(data.content), data.headers["content-type"]])
        page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
        page.wait_for_function("() => document.getElementById('status').textContent.includes('the image dropped')")
        assert _shown_keys(page)[0] == dropped
        assert page.evaluate("window.__xss") is None

        # one server, both views: the link opens the annotation page
        page.click("#annotate-link")
        expect(page).to_have_title("biomedica annotate")
        browser.close()
