"""Search over an archive, shared by the `index` stage (which builds) and `serve` (which queries).

`tokenize` (the biomedical tokenizer), `layout` (the index folder's file names), `docs`
(the docs table: doc id -> sample), `filters` (SearchFilters, the per-doc filter columns),
`keyword` (tantivy), `vectors` (dense vectors: exact or IVF, faiss) and `reader`
(SearchIndex: everything opened together). Names load on first use, so importing the
package costs nothing.
"""

from typing import TYPE_CHECKING

from biomedica.lazy import lazy_exports

_EXPORTS = {
    "IndexLayout": "layout",
    "IndexMissing": "reader",
    "KeywordHits": "keyword",
    "SearchFilters": "filters",
    "FilterColumns": "filters",
    "SearchIndex": "reader",
    "VectorIndex": "vectors",
    "VectorUpdate": "vectors",
    "update_vectors": "vectors",
    "default_index_dir": "layout",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from biomedica.search.filters import FilterColumns, SearchFilters
    from biomedica.search.keyword import KeywordHits
    from biomedica.search.layout import IndexLayout, default_index_dir
    from biomedica.search.reader import IndexMissing, SearchIndex
    from biomedica.search.vectors import VectorIndex, VectorUpdate, update_vectors
