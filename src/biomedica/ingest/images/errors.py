"""Moved to `biomedica.images.errors`; this old import path stays as an alias for one release."""

import sys

import biomedica.images.errors as _moved

sys.modules[__name__] = _moved
