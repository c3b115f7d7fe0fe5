"""The one way to parse XML the project did not write: nothing a document names is ever opened.

A DOCTYPE or entity may name any path or URL: `/dev/stdin`, a FIFO, `/dev/zero`,
`http://...`. libxml2 must open none of them. The options alone are not enough: with
`collect_ids=False`, lxml (6.1 on libxml2 < 2.15) sets `XML_SKIP_IDS` in the parser's
`loadsubset`, which libxml2 reads as "load the external DTD", so a SYSTEM id naming a
FIFO blocked the parse forever. So the parser keeps `collect_ids=True` and, whatever a
future lxml does with its options, carries a resolver that answers every external load
with an empty document. Errors are described by position and libxml2 error code only
(`xml_error_summary`), as lxml's messages quote the document.
"""

from __future__ import annotations

from lxml import etree


class _NothingExternal(etree.Resolver):
    """Answers every DTD, entity or XInclude load with an empty document: no file or URL is opened."""

    def resolve(self, url, pubid, context):
        return self.resolve_string("", context)


def safe_xml_parser(recover: bool = False, **options) -> etree.XMLParser:
    """An lxml parser that opens nothing: no DTD, no network, no external entities, no XInclude.

    `options` are further XMLParser options (huge_tree, remove_comments, ...); the
    safety options cannot be overridden. lxml parsers are not thread-safe: one per thread.
    """
    options.update(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        collect_ids=True,  # False makes lxml on libxml2 < 2.15 load the external DTD (see above)
        recover=recover,
    )
    parser = etree.XMLParser(**options)
    parser.resolvers.add(_NothingExternal())
    return parser


_ERROR_NAMES: dict[int, str] = {}


def xml_error_summary(exc: etree.XMLSyntaxError) -> str:
    """`line 3, column 12: tag name mismatch`: where and what, never the text lxml quotes."""
    if not _ERROR_NAMES:
        _ERROR_NAMES.update(
            (code, name) for name, code in vars(etree.ErrorTypes).items() if isinstance(code, int) and name.isupper()
        )
    name = _ERROR_NAMES.get(getattr(exc, "code", None) or -1)
    what = name.removeprefix("ERR_").replace("_", " ").lower() if name else "syntax error"
    line, column = getattr(exc, "position", None) or (None, None)
    where = f"line {line}, column {column}" if line else "at an unknown position"
    return f"{where}: {what}"
