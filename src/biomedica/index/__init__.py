"""The `index` stage: builds ARCHIVE/index/ (keyword + vector indexes, filter columns), incrementally by unit.

Reading the index is `biomedica.search` (shared with `serve`); this stage only writes it.
"""
