"""Lazy imports: package exports (PEP 562) and optional packages named by the extra that installs them.

`archive`, `models` and `net` export many names, but a caller of one light module (the
stdlib-only `pipe:` helper, a config validating a spec string) must not pay for pyarrow,
torch or boto3. Each package lists `name -> module` and gets its `__getattr__` here.
An optional package that is missing is named with the extra that installs it
(`missing_extra_message`, `require`), so every command says it in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: `exports` maps a name to its submodule (or a full module path)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module if module.startswith("biomedica.") else f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    return __getattr__


# Optional packages and the pyproject extra that installs each (top-level import names).
EXTRAS: dict[str, str] = {
    "torch": "clip", "torchvision": "clip", "open_clip": "clip", "open_clip_train": "clip", "timm": "clip",
    "webdataset": "clip", "braceexpand": "clip", "pandas": "clip", "tensorboard": "clip", "safetensors": "clip",
    "sklearn": "curate", "faiss": "faiss", "matplotlib": "eval", "boto3": "cloud", "botocore": "cloud",
    "ray": "ray", "fastapi": "annotate", "uvicorn": "annotate", "starlette": "annotate",
    "tantivy": "index", "multipart": "serve", "python_multipart": "serve",
    "pydicom": "demo", "pydicom_data": "demo", "skimage": "demo",
    "rapidocr_onnxruntime": "ocr", "onnxruntime": "ocr",
    "huggingface_hub": "publish",
}


# Extras that a whole command needs: under that command a missing package of the extra names the
# command's extra (`biomedica serve` without fastapi says biomedica[serve], not annotate's extra,
# since serve's extra brings fastapi and tantivy and faiss at once); cli.groups says which command needs which.
EXTRA_PACKAGES: dict[str, frozenset[str]] = {
    "index": frozenset({"tantivy", "faiss"}),
    "serve": frozenset({"fastapi", "uvicorn", "starlette", "multipart", "python_multipart", "tantivy", "faiss"}),
}


class MissingExtra(ImportError):
    """An optional package is not installed; the message names the extra that brings it."""


def missing_extra_message(exc: ImportError, needed_for: str | None = None, command_extra: str | None = None
                          ) -> str | None:
    """`... needs X: pip install 'biomedica[EXTRA]'` when `exc` is a missing optional package, else None.

    `command_extra`: the extra the running command needs whole (EXTRA_PACKAGES); it is named
    for any of its packages, whatever smaller extra the package also belongs to.
    """
    top = (exc.name or "").partition(".")[0]
    if command_extra is not None and top in EXTRA_PACKAGES.get(command_extra, ()):
        extra = command_extra
    elif isinstance(exc, MissingExtra):
        return str(exc)
    else:
        extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"{needed_for or 'this command'} needs the Python package {top!r}, which is not installed: pip install 'biomedica[{extra}]'"


def require(module: str, needed_for: str) -> Any:
    """Import an optional module, or raise MissingExtra naming the extra that installs it."""
    try:
        return import_module(module)
    except ImportError as exc:
        message = missing_extra_message(exc, needed_for) or f"{needed_for} needs {module!r}: {exc}"
        raise MissingExtra(message, name=exc.name) from None
