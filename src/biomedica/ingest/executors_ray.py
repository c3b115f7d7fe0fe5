"""Old import path of the Ray executor, kept for one release; use `biomedica.exec` instead.

`run_ray(todo, source, root, images, workers)` keeps its old ingest signature (it is
`run_units(run_unit, todo, executor="ray", ...)` now); the rest lives in
`biomedica.exec.ray_tasks`. Importing this module without Ray raises ImportError, as before.
"""

from biomedica.exec.errors import ExecutorError
from biomedica.ingest.executors import run_ray

try:
    from biomedica.exec.ray_tasks import ClusterRateLimiter, RateLimitLedger, cluster_cpus
except ExecutorError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(str(exc)) from exc

__all__ = ["ClusterRateLimiter", "RateLimitLedger", "cluster_cpus", "run_ray"]
