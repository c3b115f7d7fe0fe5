"""One model spec and loader for every stage (curate, eval, train).

`parse_model_spec` reads the `--model` grammar (models.spec), `load_model(spec, device,
precision)` builds a `Model` (OpenCLIP or image-only timm), `pick_device` and
`resolve_precision` choose where and how it runs, `decode_image` turns image bytes into
its input, and `register_model_config` / `register_builtin_configs` make architecture JSONs
(shipped under models/configs/) known to OpenCLIP.
"""

from typing import TYPE_CHECKING

from biomedica.lazy import lazy_exports

# Public names and the module that defines each, imported on first use (PEP 562): a config
# that only validates a spec string pulls in neither torch nor Pillow.
_EXPORTS = {
    "ClipModel": "load",
    "DECODE_RULE": "decode",
    "Model": "load",
    "ModelFileNotFound": "spec",
    "ModelLoadError": "spec",
    "ModelSpec": "spec",
    "TINY_ARCH": "spec",
    "TINY_PREFIX": "spec",
    "check_device": "device",
    "decode_image": "decode",
    "l2_normalise": "load",
    "load_model": "load",
    "parse_model_spec": "spec",
    "pick_device": "device",
    "register_builtin_configs": "configs",
    "register_model_config": "configs",
    "resolve_precision": "device",
    "scale_to_uint8": "decode",
    "to_rgb": "decode",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from biomedica.models.configs import register_builtin_configs, register_model_config
    from biomedica.models.decode import DECODE_RULE, decode_image, scale_to_uint8, to_rgb
    from biomedica.models.device import check_device, pick_device, resolve_precision
    from biomedica.models.load import ClipModel, Model, l2_normalise, load_model
    from biomedica.models.spec import (
        TINY_ARCH,
        TINY_PREFIX,
        ModelFileNotFound,
        ModelLoadError,
        ModelSpec,
        parse_model_spec,
    )
