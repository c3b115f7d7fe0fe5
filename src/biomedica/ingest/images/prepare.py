"""Moved to `biomedica.images.prepare`; this old import path stays as an alias for one release."""

import sys

import biomedica.images.prepare as _moved

sys.modules[__name__] = _moved
