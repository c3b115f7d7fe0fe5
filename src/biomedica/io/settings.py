"""The one rule for resuming: a run continues an output only with the settings that started it.

Resuming with other settings would mix two builds in one output (units of two sizes,
embeddings of two models), so the first run records its settings and a later run with
other values is refused with the differing keys and the way out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biomedica.io.atomic import write_json_atomic


class SettingsMismatch(ValueError):
    """A run would continue an output started with other settings."""


def check_settings(
    path: Path,
    settings: dict[str, Any],
    what: str,
    fix: str,
    record: bool = True,
    defaults: dict[str, Any] | None = None,
) -> dict | None:
    """Compare `settings` with those recorded in `path`; None on a first run, else the recorded dict.

    A first run records `settings` atomically (`record=False`: the caller writes a fuller file
    itself). Keys recorded but not in `settings` are not compared. A key in `defaults` that the
    file lacks (recorded before the setting existed) counts as recorded with that default, so
    adding a setting never locks older outputs out of a resume. On a difference raises
    SettingsMismatch: "`what` was started with other settings (key: old -> new); `fix`".
    """
    path = Path(path)
    wanted = json.loads(json.dumps(settings))  # tuples -> lists: compare what the file can hold
    if not path.is_file():
        if record:
            write_json_atomic(path, wanted)
        return None
    try:
        had = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SettingsMismatch(f"{path}: unreadable settings ({exc}); {fix}") from None
    if not isinstance(had, dict):
        raise SettingsMismatch(f"{path}: holds no settings object; {fix}")
    had_or_default = json.loads(json.dumps(defaults or {})) | had
    changes = [
        f"{key}: {had_or_default.get(key)!r} -> {value!r}"
        for key, value in wanted.items()
        if had_or_default.get(key) != value
    ]
    if changes:
        raise SettingsMismatch(f"{what} was started with other settings ({', '.join(changes)}); {fix}")
    return had
