"""Moved to `biomedica.ingest.resolve_images`; this old import path stays as an alias for one release."""

import sys

import biomedica.ingest.resolve_images as _moved

sys.modules[__name__] = _moved
