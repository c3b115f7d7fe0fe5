"""Lazy package exports (PEP 562): a package names its public objects without importing them.

`archive`, `models` and `net` export many names, but a caller of one light module (the
stdlib-only `pipe:` helper, a config validating a spec string) must not pay for pyarrow,
torch or boto3. Each package lists `name -> module` and gets its `__getattr__` here.
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
