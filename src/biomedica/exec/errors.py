"""Errors of the executor layer, and the note that names the unit an exception came from."""

from __future__ import annotations


class ExecutorError(ValueError):
    """The chosen executor cannot run here: unknown name, missing extra, or no job-array position."""


def name_unit(exc: BaseException, unit: object) -> None:
    """Add a note naming `unit` to an exception raised while running it (its type stays the same)."""
    unit_id = getattr(unit, "unit_id", None)
    label = f"work unit {unit_id}" if unit_id is not None else f"work unit {unit!r:.200}"
    exc.add_note(f"raised while running {label}")
