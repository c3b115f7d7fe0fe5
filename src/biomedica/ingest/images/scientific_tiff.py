"""Moved to `biomedica.images.scientific_tiff`; this old import path stays as an alias for one release."""

import sys

import biomedica.images.scientific_tiff as _moved

sys.modules[__name__] = _moved
