"""Moved to `biomedica.images.phash`; this old import path stays as an alias for one release."""

import sys

import biomedica.images.phash as _moved

sys.modules[__name__] = _moved
