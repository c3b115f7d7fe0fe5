"""Moved to `biomedica.io.locations`; this old import path stays as an alias for one release."""

import sys

import biomedica.io.locations as _moved

sys.modules[__name__] = _moved
