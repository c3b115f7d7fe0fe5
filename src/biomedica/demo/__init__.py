"""The embedded demo: a small PMC-like corpus generated at run time, ingested end to end."""

from biomedica.testing.corpus.corpus import (
    DemoArticle,
    DemoCorpusConfig,
    DemoCorpusInfo,
    DemoFigure,
    DemoGraphic,
    write_demo_corpus,
)

__all__ = [
    "DemoArticle",
    "DemoCorpusConfig",
    "DemoCorpusInfo",
    "DemoFigure",
    "DemoGraphic",
    "write_demo_corpus",
]
