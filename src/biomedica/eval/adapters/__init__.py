"""Dataset adapters for evaluation tasks; importing this package registers all of them."""

from biomedica.eval.adapters import archive, dicom, h5, hf_disk, imagefolder, medmnist, table, webdataset_shards  # noqa: F401
from biomedica.eval.adapters.registry import (
    ADAPTERS,
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    get_adapter,
    load_dataset,
    register_adapter,
)

__all__ = [
    "ADAPTERS",
    "AdapterOptions",
    "DatasetInvalid",
    "DatasetMissing",
    "EvalDataset",
    "get_adapter",
    "load_dataset",
    "register_adapter",
]
