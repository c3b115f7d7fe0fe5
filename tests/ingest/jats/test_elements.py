from lxml import etree

from biomedica.ingest.jats.elements import child, child_text, children

ALI = "http://www.niso.org/schemas/ali/1.0/"
XML = (
    f"<permissions xmlns:ali='{ALI}'><license><license-p>a</license-p></license>"
    "<license><license-p/></license><!-- note --><copyright-year>2020</copyright-year>"
    "<ali:license_ref>https://creativecommons.org/licenses/by/4.0/</ali:license_ref>"
    "<wrap><license>nested</license></wrap></permissions>"
)


def test_child_helpers_give_what_elementpath_gives():
    root = etree.fromstring(XML)
    for tag in ("license", "copyright-year", "missing", f"{{{ALI}}}license_ref", "license-p"):
        assert child(root, tag) is root.find(tag)
        assert children(root, tag) == root.findall(tag)
        assert child_text(root, tag) == root.findtext(tag)
    assert len(children(root, "license")) == 2  # the nested one is not a child
    assert child_text(root[1], "license-p") == "" and child_text(root, "copyright-year") == "2020"
    assert child(None, "license") is None
