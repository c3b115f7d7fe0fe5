"""The annotation app driven in a real browser: Playwright with Debian's Chromium (/usr/bin/chromium).

CI installs the browser itself (`apt-get install -y chromium`, `pip install playwright`);
the test is skipped only when /usr/bin/chromium is absent. `playwright install` is never
used: no browser download.
"""

import dataclasses

import pytest

from biomedica.testing.web import CHROMIUM, CHROMIUM_ARGS, CHROMIUM_MISSING, serving

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=CHROMIUM_MISSING
)




@pytest.fixture()
def server(clustered):
    from biomedica.annotate.app import AnnotateConfig, create_app

    archive, annotations = clustered
    config = AnnotateConfig(archive=archive, annotations=annotations, samples_per_cluster=6)
    with serving(create_app(config)) as url:
        yield url, config


def test_two_clusters_labelled_in_chromium(server):
    from playwright.sync_api import expect, sync_playwright

    from biomedica.annotate.store import LabelStore

    url, config = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.fill("#annotator", "dr-who")
        page.click("#start")
        expect(page.locator("#cluster-id")).not_to_be_empty()
        first = int(page.inner_text("#cluster-id"))
        expect(page.locator(".sample")).to_have_count(6)
        page.wait_for_function("[...document.querySelectorAll('.sample img')].every(i => i.complete && i.naturalWidth > 0)")

        # saving without choices shows the server's reason and stores nothing
        page.click("#save")
        expect(page.locator("#message")).to_contain_text("pick at least one global or local concept")

        # cluster 1 (charts and diagrams): single panel, Plots and Charts, bar chart found via the filter
        page.check("input[name=panel][value=single]")
        page.check("input.global[value=plots_and_charts]")
        page.fill("#local-filter", "bar")
        expect(page.locator("input.local[value=computed_tomography]")).to_be_hidden()
        page.check("input.local[value=bar_chart]")
        page.fill("#note", "mostly bar charts")
        page.click("#save")
        expect(page.locator("#cluster-id")).not_to_have_text(str(first))
        second = int(page.inner_text("#cluster-id"))
        # the form was reset for the next cluster
        assert not page.is_checked("input.global[value=plots_and_charts]")

        # cluster 2: multiple panels, Clinical Imaging + ultrasound
        page.check("input[name=panel][value=multiple]")
        page.check("input.global[value=clinical_imaging]")
        page.check("input.local[value=ultrasound]")
        page.click("#save")
        expect(page.locator("#cluster-id")).not_to_have_text(str(second))
        expect(page.locator("#progress")).to_contain_text("2 / 3")

        # the last one is marked to split; then the queue is empty and export works from the page
        page.click("#split")
        expect(page.locator("#done")).to_be_visible()
        page.click("#export")
        expect(page.locator("#export-result")).to_contain_text("exported 3 clusters")
        page.click("#show-agreement")
        expect(page.locator("#agreement")).to_contain_text("annotators")
        row = page.locator("#agreement tr").filter(has=page.locator("td", has_text=f"cluster {first}"))
        expect(row.locator("td").nth(1)).to_have_text("labelled plots_and_charts (1 annotators, agreement 1.000)")
        browser.close()

    stored = {label.cluster: label for label in LabelStore(config.database_path()).latest()}
    assert stored[first].annotator == "dr-who" and stored[first].status == "labelled"
    assert (stored[first].panel_type, stored[first].global_concepts, stored[first].local_concepts) == (
        "single", ["plots_and_charts"], ["bar_chart"])
    assert stored[first].note == "mostly bar charts"
    assert (stored[second].panel_type, stored[second].global_concepts, stored[second].local_concepts) == (
        "multiple", ["clinical_imaging"], ["ultrasound"])
    assert [label.status for label in stored.values()].count("split") == 1
    assert config.store().read("labels").num_rows == 51  # every sample got its cluster's label row


XSS_CAPTION = (
    'Figure 1. <img src=x onerror="window.__pwned=(window.__pwned||0)+1"> '
    '<script>window.__pwned=(window.__pwned||0)+1</script><b onmouseover="window.__pwned=1">CT</b>'
)
XSS_NAME = '<img src=y onerror="window.__pwned=(window.__pwned||0)+1">'


def test_captions_and_names_are_shown_as_text_never_run(clustered, tmp_path):
    """Captions come from the archive and names from other annotators: the page must never run them."""
    from playwright.sync_api import expect, sync_playwright

    from biomedica.annotate.app import AnnotateConfig, create_app

    archive, annotations = clustered
    config = AnnotateConfig(archive=archive, annotations=annotations, samples_per_cluster=3,
                            database=tmp_path / "labels.sqlite")
    app = create_app(config)
    for summary in app.state.catalogue.clusters.values():  # as if the archive's captions carried markup
        summary.samples[0] = dataclasses.replace(summary.samples[0], caption=XSS_CAPTION)
    dialogs = []
    with serving(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        page.fill("#annotator", XSS_NAME)
        page.click("#start")
        expect(page.locator(".sample")).to_have_count(3)
        page.wait_for_function("[...document.querySelectorAll('.sample img')].every(i => i.complete)")
        expect(page.locator(".sample p").first).to_have_text(XSS_CAPTION)
        page.locator(".sample p").first.hover()
        # the annotator's name is stored and shown back to everyone in the agreement table
        for _ in range(3):
            page.click("#split")
        expect(page.locator("#done")).to_be_visible()
        page.click("#show-agreement")
        expect(page.locator("#agreement")).to_contain_text(XSS_NAME)
        page.wait_for_timeout(300)  # give a stray onerror time to fire
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x], img[src=y], #grid script, #grid b").count() == 0
        assert dialogs == []
        browser.close()
