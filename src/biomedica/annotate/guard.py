"""Moved to `biomedica.web.guard` (shared by annotate and serve); this old import path stays as an alias for one release."""

import sys

import biomedica.web.guard as _moved

sys.modules[__name__] = _moved
