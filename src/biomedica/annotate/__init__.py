"""The expert annotation app: label clusters in a browser, several annotators, majority vote, kappa.

`create_app(AnnotateConfig(archive=...))` gives a FastAPI app (one static page, a JSON API,
SQLite storage); `biomedica annotate ARCHIVE` serves it. Labels are exported as
`annotations/cluster_labels.parquet` and propagated to samples as `annotations/labels.parquet`.
FastAPI/uvicorn are imported only by `create_app` and the command.
"""

from biomedica.annotate.agreement import cohen_kappa, fleiss_kappa, majority
from biomedica.annotate.app import AnnotateConfig, create_app
from biomedica.annotate.store import ClusterLabel, LabelStore

__all__ = ["AnnotateConfig", "ClusterLabel", "LabelStore", "cohen_kappa", "create_app", "fleiss_kappa", "majority"]
