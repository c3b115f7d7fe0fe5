"""Old import path of the job-array executor, kept for one release; use `biomedica.exec` instead.

`run_array_task(todo, source, root, images, workers)` keeps its old ingest signature (it is
`run_units(run_unit, todo, executor="array", ...)` now); the rest lives in
`biomedica.exec.job_array`.
"""

from biomedica.exec.job_array import ArrayTask, ArrayTaskError, array_task_from_env, share_key
from biomedica.ingest.executors import run_array as run_array_task

__all__ = ["ArrayTask", "ArrayTaskError", "array_task_from_env", "run_array_task", "share_key"]
