"""The serve stage: one search server (API + page) over an archive and its index.

`create_app(ServeConfig(archive=...))` gives the FastAPI app (serve.app); the ranking, figure
records and exports are `SearchEngine` (serve.engine); `biomedica serve ARCHIVE` runs it with
uvicorn (and mounts the annotation app under /annotate when clusters exist). FastAPI, uvicorn
and the query model are imported only when used.
"""

from biomedica.serve.config import ServeConfig

__all__ = ["ServeConfig"]
