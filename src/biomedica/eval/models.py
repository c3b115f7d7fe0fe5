"""Moved to `biomedica.models` (one spec and loader for every stage); these names stay for one release."""

from biomedica.models.configs import register_builtin_configs as register_tiny_config
from biomedica.models.device import pick_device
from biomedica.models.load import ClipModel, Model, load_model
from biomedica.models.load import Model as OpenClipModel
from biomedica.models.spec import TINY_ARCH, TINY_PREFIX, ModelLoadError, ModelSpec, parse_model_spec

__all__ = [
    "TINY_ARCH", "TINY_PREFIX", "ClipModel", "Model", "ModelLoadError", "ModelSpec", "OpenClipModel", "load_model",
    "parse_model_spec", "pick_device", "register_tiny_config",
]
