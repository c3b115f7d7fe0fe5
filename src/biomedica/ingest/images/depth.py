"""Moved to `biomedica.images.depth`; this old import path stays as an alias for one release."""

import sys

import biomedica.images.depth as _moved

sys.modules[__name__] = _moved
