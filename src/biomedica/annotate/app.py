"""The annotation web app: FastAPI routes over a cluster catalogue, a label store and the taxonomy.

Routes (JSON unless said):

| route | what |
|---|---|
| `GET /` | the single page (static/index.html) |
| `GET /api/taxonomy` | global concepts with their local concepts, panel types, version |
| `GET /api/queue?annotator=NAME` | clusters NAME has not labelled yet, in queue order, and progress |
| `GET /api/clusters/{id}` | size, top caption terms, samples (key, caption) |
| `GET /api/image/{key}?size=thumb` (or `full`) | the image: a JPEG thumbnail, or the bytes as stored (web.images) |
| `GET /api/images/{key}` | the stored bytes (the old route, kept as an alias for one release) |
| `POST /api/labels` | store one label `{annotator, cluster, status, panel_type, global_concepts, local_concepts, note}` |
| `GET /api/agreement` | majority vote per cluster, Fleiss' and Cohen's kappa |
| `POST /api/export` | write `cluster_labels.parquet` and the propagated `labels.parquet` |
| `GET /api/openapi.json`, `/api/docs` | the API's schema and its documentation page |

Every request passes `web.guard.RequestGuard` (Host check, cross-site refusal, body cap); a
malformed request is a 4xx with a short message that never repeats the request's bytes.

The page calls the API by relative URLs (`api/...`), so the app also works mounted below a
prefix: `parent.mount("/annotate", create_app(config, guard=False))` in an app whose own guard
already covers every path (serve does this); `/annotate` then redirects to `/annotate/`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from biomedica.annotate.catalogue import ClusterCatalogue
from biomedica.annotate.consensus import AgreementReport, agreement_report, consensus, consensus_table
from biomedica.annotate.store import STATUSES, ClusterLabel, LabelStore
from biomedica.archive.annotations import AnnotationStore, annotations_lock, default_annotations_dir
from biomedica.archive.labels import write_labels
from biomedica.io.lock import ArchiveLocked
from biomedica.taxonomy import load_taxonomy
from biomedica.web.guard import DEFAULT_MAX_BODY, RequestGuard, shorten
from biomedica.web.images import ImageResponder


class AnnotateConfig(BaseModel):
    """Where the app reads clusters and writes labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: Path
    annotations: Path | None = None
    database: Path | None = Field(default=None, description="SQLite file of the labels (default annotations/labels.sqlite)")
    taxonomy: Path | None = None
    samples_per_cluster: int = Field(default=24, ge=1, le=200)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names accepted in the Host header besides 127.0.0.1, localhost, [::1] and --host "
        "(e.g. this machine's name when shared on a network)",
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1024, description="largest request body accepted")

    def store(self) -> AnnotationStore:
        return AnnotationStore(self.annotations or default_annotations_dir(self.archive))

    def database_path(self) -> Path:
        return self.database or self.store().root / "labels.sqlite"


@dataclass
class ExportResult:
    labels: pa.Table  # the propagated per-sample labels written to labels.parquet
    report: AgreementReport


def export_labels(config: AnnotateConfig, labels: LabelStore | None = None) -> ExportResult:
    """Write the majority label per cluster (cluster_labels.parquet) and per sample (labels.parquet).

    Holds the annotations' write lock while writing the tables (the labels themselves live in
    SQLite, which locks itself). `labels`: the app's open store; else the database is opened.
    """
    if labels is not None:
        latest = labels.latest()
    elif not config.database_path().is_file():
        raise FileNotFoundError(f"{config.database_path()}: no labels yet; run `biomedica annotate` first")
    else:
        opened = LabelStore(config.database_path())
        try:
            latest = opened.latest()
        finally:
            opened.close()
    store = config.store()
    with annotations_lock(config.archive, store, "biomedica annotate --export"):
        table = write_labels(store, consensus_table(consensus(latest)))
    return ExportResult(table, agreement_report(latest))


ConceptId = Annotated[str, StringConstraints(max_length=100)]
MAX_CLUSTER = 2**31 - 1  # cluster ids are int32 (curate.cluster.CLUSTERS_SCHEMA)


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    annotator: str = Field(min_length=1, max_length=100)
    cluster: int = Field(ge=0, le=MAX_CLUSTER)
    status: str = Field(default="labelled", max_length=20)
    panel_type: str | None = Field(default=None, max_length=100)
    global_concepts: list[ConceptId] = Field(default_factory=list, max_length=100)
    local_concepts: list[ConceptId] = Field(default_factory=list, max_length=500)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("annotator")
    @classmethod
    def _annotator_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("annotator name is blank: type your name")
        return value.strip()


def _validation_errors(errors) -> dict:
    """A 422 body from pydantic errors: field locations and messages only, never the input."""
    short = [{"loc": [shorten(str(part), 40) for part in e.get("loc", ())], "msg": shorten(str(e.get("msg", "")), 200)}
             for e in list(errors)[:20]]
    detail = "; ".join(
        f"{'.'.join(p for p in e['loc'] if p not in ('body', 'query', 'path')) or 'request'}: {e['msg']}"
        for e in short[:5]
    )
    return {"detail": detail, "errors": short}


def create_app(config: AnnotateConfig, *, guard: bool = True, images: ImageResponder | None = None):
    """The FastAPI application (state: catalogue, label store, taxonomy) for `config`.

    `guard=False` only when mounting it in a parent app whose own RequestGuard sees every
    request first; `images`: a parent's responder to share (one thumbnail cache), else its own.
    """
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    store = config.store()
    catalogue = ClusterCatalogue(config.archive, store, config.samples_per_cluster)
    taxonomy = load_taxonomy(config.taxonomy)
    labels = LabelStore(config.database_path())
    global_ids = set(taxonomy.global_by_id())
    local_by_id = taxonomy.local_by_id()
    panel_ids = {p.id for p in taxonomy.panel_types}
    page = resources.files("biomedica.annotate").joinpath("static/index.html").read_text(encoding="utf-8")

    app = FastAPI(title="biomedica annotate", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    app.state.labels = labels
    app.state.catalogue = catalogue
    app.state.images = images = images or ImageResponder(catalogue.image)
    if guard:
        app.add_middleware(RequestGuard, max_body_bytes=config.max_body_bytes, allowed_hosts=config.allowed_hosts,
                           bound_host=config.host)

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_errors(exc.errors()), status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/taxonomy")
    def get_taxonomy() -> dict:
        return {
            "label": taxonomy.label(),
            "panel_types": [p.model_dump() for p in taxonomy.panel_types],
            "global_concepts": [
                {"id": g.id, "name": g.name, "description": g.description,
                 "local": [{"id": c.id, "name": c.name} for c in g.local]}
                for g in taxonomy.global_concepts
            ],
        }

    @app.get("/api/queue")
    def queue(annotator: str = Query(min_length=1, max_length=100)) -> dict:
        annotator = annotator.strip()
        if not annotator:
            raise HTTPException(422, "annotator: annotator name is blank: type your name")
        done = labels.labelled_by(annotator)
        order = catalogue.order()
        remaining = [c for c in order if c not in done]
        return {"annotator": annotator, "remaining": remaining, "done": len(order) - len(remaining), "total": len(order)}

    @app.get("/api/clusters/{cluster}")
    def cluster_detail(cluster: int = PathParam(ge=0, le=MAX_CLUSTER)) -> dict:
        summary = catalogue.clusters.get(cluster)
        if summary is None:
            raise HTTPException(404, f"cluster {cluster} does not exist")
        return {
            "cluster": cluster, "size": summary.size, "top_terms": summary.top_terms,
            "samples": [{"key": s.key, "caption": s.caption[:400]} for s in summary.samples],
        }

    @app.get("/api/image/{key}", response_class=Response, response_model=None)
    def image(key: str, size: str = "full"):
        return images.respond(key, size)

    @app.get("/api/images/{key}", response_class=Response, response_model=None, include_in_schema=False)
    def image_alias(key: str):
        return images.respond(key, "full")

    @app.post("/api/labels")
    def add_label(label: LabelIn) -> dict:
        problems = []
        if label.cluster not in catalogue.clusters:
            problems.append(f"cluster {label.cluster} does not exist")
        if label.status not in STATUSES:
            problems.append(f"status must be one of {', '.join(STATUSES)}")
        implied = {local_by_id[c].global_id for c in label.local_concepts if c in local_by_id}
        if label.status == "labelled":
            if not label.global_concepts and not implied:
                problems.append("pick at least one global or local concept (or mark the cluster ambiguous / to split)")
            if label.panel_type not in panel_ids:
                problems.append(f"pick a panel type ({', '.join(sorted(panel_ids))})")
        unknown = [c for c in label.global_concepts if c not in global_ids]
        unknown += [c for c in label.local_concepts if c not in local_by_id]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            problems.append(f"not in taxonomy {taxonomy.label()}: {', '.join(shorten(u, 40) for u in unknown[:5])}{more}")
        if problems:
            raise HTTPException(422, "; ".join(problems))
        global_concepts = sorted(set(label.global_concepts) | implied)  # a local concept implies its global one
        row_id = labels.add(ClusterLabel(
            annotator=label.annotator, cluster=label.cluster, status=label.status,
            panel_type=label.panel_type if label.status == "labelled" else None,
            global_concepts=global_concepts if label.status == "labelled" else [],
            local_concepts=sorted(set(label.local_concepts)) if label.status == "labelled" else [],
            note=label.note, taxonomy=taxonomy.label(),
        ))
        return {"id": row_id, "stored": True}

    @app.get("/api/agreement")
    def agreement() -> dict:
        latest = labels.latest()
        return {"report": asdict(agreement_report(latest)), "clusters": [asdict(c) for c in consensus(latest)]}

    @app.post("/api/export")
    def export() -> dict:
        try:
            result = export_labels(config, labels)
        except ArchiveLocked as exc:
            raise HTTPException(409, str(exc)) from None
        return {"clusters": result.report.clusters_labelled, "samples": result.labels.num_rows,
                "cluster_labels": str(store.table_path("cluster_labels")), "labels": str(store.table_path("labels"))}

    return app
