"""The search server: FastAPI routes over a SearchEngine, behind the web apps' request guard.

Routes (JSON unless said; the names and fields are the issue's contract):

| route | what |
|---|---|
| `GET /` | the search page (static/index.html) |
| `GET /api/search?q=&mode=keyword|semantic|hybrid&FILTERS&limit=20&offset=0` | `{total, results: [{key, pmcid, caption, score, license, license_group, year, journal, image_url}]}` |
| `POST /api/search/image` (multipart `image`, FILTERS in the query) | the same shape: nearest figures by image |
| `GET /api/similar/{key}?limit=&FILTERS` | image neighbours of a figure, itself left out, `duplicate` marked |
| `GET /api/figure/{key}` | the figure record, mentions, article, DOI, PMC link, licence, attribution line |
| `GET /api/image/{key}?size=thumb|full` | image bytes (a JPEG thumbnail, or the stored bytes); keys only |
| `GET /api/facets?q=&FILTERS` | counts per licence group, year, journal, panel type, concept |
| `POST /api/export` (JSON) | a select manifest (Parquet download) of a query or of listed keys |
| `GET /api/info` | what this server holds: figures, embeddings, modes, whether /annotate is mounted |
| `GET /api/openapi.json`, `/api/docs` | the API's schema and its documentation page |

FILTERS are `biomedica.search.filters.SearchFilters` fields as query parameters: `license_group`,
`year_from`, `year_to`, `journal`, `article_type`, `panel_type`, `concept`, `cluster`,
`canonical_only`, `exclude_flags`, `has_mentions` (list fields repeat: `concept=a&concept=b`, or
take a comma-separated value, except `journal`). An unknown parameter name is a 400 naming it, a
bad value a 422 naming the field; neither echoes what was sent.

Export body: `{"q": TEXT, "mode": "keyword", "filters": {FILTERS}, "limit": N}` (filter fields may
also sit at the top level) or `{"keys": [KEY, ...]}`; `"include_held_out": true` keeps the
articles evaluation holds out (left out by default, as `biomedica select` does).

Every request passes `biomedica.web.guard.RequestGuard`: the Host header must name this server,
state-changing requests must be same-origin JSON (the image route also takes multipart), bodies
are capped while they stream (the image upload at `max_upload_bytes`). The archive and index
are only read.
"""


from importlib import resources
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from biomedica.search.filters import FILTER_NEEDS, FilterUnavailable, SearchFilters
from biomedica.serve.config import ServeConfig
from biomedica.serve.engine import MODES, NotFound, SearchEngine, ServeError
from biomedica.web.guard import RequestGuard, shorten
from biomedica.web.images import ImageResponder

IMAGE_ROUTE = "/api/search/image"
PAGING = ("limit", "offset")
PARQUET_TYPE = "application/vnd.apache.parquet"
FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>biomedica search</title></head>
<body><h1>biomedica search</h1><p>The search page is not installed in this copy of biomedica;
the API is: <a href="/api/docs">/api/docs</a>.</p></body></html>
"""


def filter_fields() -> dict[str, bool]:
    """{SearchFilters field: takes a list}: the query parameters every search route accepts."""
    return {name: get_origin(field.annotation) is list for name, field in SearchFilters.model_fields.items()}


class ParamError(ServeError):
    status = 422


def parse_filters(params: list[tuple[str, str]], allowed: tuple[str, ...]) -> tuple[SearchFilters, dict[str, str]]:
    """(SearchFilters, the other `allowed` parameters) from query pairs; unknown names are a 400 naming them."""
    fields = filter_fields()
    unknown = sorted({name for name, _ in params if name not in fields and name not in allowed})
    if unknown:
        names = ", ".join(repr(shorten(n, 40)) for n in unknown[:5])
        known = ", ".join([*allowed, *fields])
        raise ServeError(f"unknown parameter {names}; this route takes {known}")
    values: dict[str, Any] = {}
    others: dict[str, str] = {}
    for name, value in params:
        if name in allowed:
            others[name] = value
        elif fields[name]:
            parts = [value] if name == "journal" else [p for p in value.split(",")]
            values.setdefault(name, []).extend(p.strip() for p in parts if p.strip())
        elif value.strip() != "":
            values[name] = value.strip()
    try:
        return SearchFilters.model_validate(values), others
    except ValidationError as exc:
        raise ParamError(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """`field: message; ...` of pydantic errors, never the input."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int)) or "request"
        parts.append(f"{shorten(where, 40)}: {shorten(str(error.get('msg', '')), 160)}")
    return "; ".join(parts)


def paging(others: dict[str, str], config: ServeConfig, default_limit: int = 20) -> tuple[int, int]:
    """(limit, offset) checked against the server's caps; a bad value is a 422 saying the range."""
    def number(name: str, default: int, low: int, high: int) -> int:
        text = others.get(name, "").strip()
        if not text:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ParamError(f"{name} must be a whole number between {low} and {high}") from None
        if not low <= value <= high:
            raise ParamError(f"{name} must be between {low} and {high}")
        return value

    return (number("limit", default_limit, 1, config.max_limit), number("offset", 0, 0, config.max_offset))


def mode_of(others: dict[str, str]) -> str:
    mode = others.get("mode", "").strip() or "keyword"
    if mode not in MODES:
        raise ParamError(f"mode must be one of {', '.join(MODES)}")
    return mode


class ExportRequest(BaseModel):
    """The body of POST /api/export: a query (q, mode, filters, limit) or a list of keys."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=1000)
    mode: Literal["keyword", "semantic", "hybrid"] = "keyword"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    keys: list[str] | None = Field(default=None, max_length=1_000_000)
    limit: int | None = Field(default=None, ge=1)
    include_held_out: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flat_filters(cls, data: Any) -> Any:
        """Filter fields at the top level (as the GET routes take them) move into `filters`."""
        if isinstance(data, dict):
            flat = {k: data[k] for k in data if k in SearchFilters.model_fields}
            if flat:
                data = {k: v for k, v in data.items() if k not in flat}
                data["filters"] = {**(data.get("filters") or {}), **flat}
        return data


def _page_html() -> str:
    try:
        return resources.files("biomedica.serve").joinpath("static/index.html").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return FALLBACK_PAGE


def create_app(config: ServeConfig, engine: SearchEngine | None = None, *, guard: bool = True):
    """The FastAPI application for `config` (opens the index unless `engine` is given).

    State: `app.state.engine`, `app.state.images` (the ImageResponder a mounted annotate app shares).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    engine = engine or SearchEngine(config)
    page = _page_html()

    def lookup(key: str) -> tuple[bytes, str]:
        try:
            return engine.image_bytes(key)
        except NotFound:
            raise KeyError(key) from None

    images = ImageResponder(lookup)
    app = FastAPI(title="biomedica search", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    app.state.engine = engine
    app.state.images = images
    app.state.annotate = False
    if guard:
        app.add_middleware(RequestGuard, max_body_bytes=config.max_body_bytes, allowed_hosts=config.allowed_hosts,
                           bound_host=config.host, multipart_paths={IMAGE_ROUTE: config.max_upload_bytes})

    @app.exception_handler(ServeError)
    async def refused(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(FilterUnavailable)
    async def unavailable_filter(request: Request, exc: FilterUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")) or "request"
            parts.append(f"{shorten(where, 40)}: {shorten(str(error.get('msg', '')), 160)}")
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:  # never a traceback to the client
        return JSONResponse({"detail": "internal error while answering this request; the server log has it"},
                            status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"X-Content-Type-Options": "nosniff"})

    @app.get("/api/info")
    def info() -> dict:
        return {
            "figures": engine.figures(),
            "embedding": engine.embedding,
            "vectors": {kind: (v.count if v is not None else 0) for kind in ("image", "text")
                        for v in [engine.vectors(kind)]},
            "modes": list(MODES) if engine.embedding else ["keyword"],
            "annotate": bool(app.state.annotate), "annotate_url": "/annotate/" if app.state.annotate else None,
            "unindexed_units": int(getattr(engine.index, "unindexed_units", 0) or 0),
            "annotations_changed": engine.index.annotations_changed,
            "max_limit": config.max_limit, "max_upload_bytes": config.max_upload_bytes,
            "filters": {name: bool(engine.index.annotation_tables.intersection(needs))
                        for name, (needs, _) in FILTER_NEEDS.items()},
        }

    @app.get("/api/search")
    def search(request: Request) -> dict:
        filters, others = parse_filters(list(request.query_params.multi_items()), ("q", "mode", *PAGING))
        limit, offset = paging(others, config)
        return engine.search(others.get("q", ""), mode_of(others), filters, limit, offset)

    @app.post(IMAGE_ROUTE)
    async def search_image(request: Request) -> dict:
        filters, others = parse_filters(list(request.query_params.multi_items()), PAGING)
        limit, offset = paging(others, config)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
            raise ServeError("send the image as multipart/form-data in a field named image")
        try:
            form = await request.form(max_files=1, max_fields=20)
        except (StarletteHTTPException, ValueError, KeyError):  # malformed multipart: one line, never its bytes
            raise ServeError("could not read the multipart body: send one file in a field named image") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise ServeError("no file in the field named image: send the picture as multipart field 'image'")
        data = await upload.read()
        await form.close()
        if not data:
            raise ServeError("the uploaded image is empty")
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(engine.search_image, data, filters, limit, offset)

    @app.get("/api/similar/{key}")
    def similar(key: str, request: Request) -> dict:
        filters, others = parse_filters(list(request.query_params.multi_items()), ("limit",))
        limit, _ = paging(others, config)
        return engine.similar(key, filters, limit)

    @app.get("/api/figure/{key}")
    def figure(key: str) -> dict:
        return engine.figure(key)

    @app.get("/api/image/{key}", response_class=Response, response_model=None)
    def image(key: str, size: str = "full"):
        return images.respond(key, size)

    @app.get("/api/facets")
    def facets(request: Request) -> dict:
        filters, others = parse_filters(list(request.query_params.multi_items()), ("q", "mode", *PAGING))
        return engine.facets(others.get("q"), filters)

    @app.post("/api/export", response_class=Response, response_model=None)
    def export(body: ExportRequest) -> Response:
        if body.keys is None and body.q is None and body.filters == SearchFilters():
            raise ServeError("give a query (q, filters) or a list of keys to export")
        if body.keys is not None and len(body.keys) > config.max_export:
            raise ServeError(f"at most {config.max_export} keys per export")
        docs = engine.export_docs(body.q, body.mode, body.filters, body.keys, body.limit)
        if not docs:
            raise ServeError("the query matches no figures: nothing to export")
        data, rows, held_out = engine.export(docs, body.include_held_out)
        if rows == 0:
            raise ServeError(f"all {held_out} figures belong to articles evaluation holds out; "
                             "send include_held_out: true to export them anyway")
        return Response(data, media_type=PARQUET_TYPE, headers={
            "Content-Disposition": 'attachment; filename="biomedica-export.parquet"',
            "X-Biomedica-Rows": str(rows), "X-Biomedica-Held-Out": str(held_out),
        })

    return app


def mount_annotate(app, annotate_app) -> None:
    """Serve the annotation app under /annotate of the search app (one server, one image path, one guard).

    The caller (cli) builds `annotate_app` with `guard=False` and `images=app.state.images`.
    """
    app.mount("/annotate", annotate_app)
    app.state.annotate = True
