"""One reading of a pydantic ValidationError, for the one-line messages every config error gets.

Options (cli), train configs, eval task files and taxonomies all report the first problem
as `location: message (and N more)`; this is where the location and message are taken out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pydantic import ValidationError

_NAMED = re.compile(r"^([a-z_][\w.]*): (.*)$", flags=re.S)


class FirstError(NamedTuple):
    location: str  # dotted field path; "" for a model-level check that names no field
    message: str  # pydantic's text without its "Value error, " prefix
    more: int  # how many other problems the error holds

    def suffix(self) -> str:
        return f" (and {self.more} more)" if self.more else ""


def first_error(exc: ValidationError) -> FirstError:
    """The first problem; a model-level check that starts its message with `field: ` is placed on that field."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    named = _NAMED.match(message)
    if not location and named:
        location, message = named.group(1), named.group(2)
    return FirstError(location, message, exc.error_count() - 1)
