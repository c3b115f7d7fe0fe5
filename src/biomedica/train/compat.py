"""Make open_clip_train's tar reader work with any webdataset version (the `eof_value` break).

webdataset 0.2.96 gave `tar_file_expander` an `eof_value` argument defaulting to `{}`,
yielded after each tar; open_clip_train 3.x's `group_by_keys_nothrow` then fails with
`KeyError: 'fname'` (webdataset#384, open_clip#935). The project pins webdataset 0.2.86,
which has no such marker; `openclip_tar_reader_fixed` still guards against a newer one being
installed: it asks the expander for `eof_value=None` when it takes the argument, and drops
any marker without a file name. It patches the name `open_clip_train.data` looks up, so
DataLoader workers started by fork (the Linux default) see it too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def without_eof_markers(expander: Callable) -> Callable:
    """`expander` (webdataset's tar_file_expander) yielding only real file entries."""
    takes_eof = "eof_value" in inspect.signature(expander).parameters

    def tar_file_expander(data, *args: Any, **kwargs: Any) -> Iterator[dict]:
        if takes_eof:
            kwargs.setdefault("eof_value", None)
        for entry in expander(data, *args, **kwargs):
            if entry and "fname" in entry:
                yield entry

    tar_file_expander.__wrapped__ = expander
    return tar_file_expander


@contextmanager
def openclip_tar_reader_fixed():
    """Within the block, open_clip_train.data reads tars without tripping on EOF markers."""
    import open_clip_train.data as openclip_data

    original = openclip_data.tar_file_expander
    openclip_data.tar_file_expander = without_eof_markers(original)
    try:
        yield
    finally:
        openclip_data.tar_file_expander = original
