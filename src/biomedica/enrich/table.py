"""Moved to `biomedica.archive.enrichment`; this old import path stays as an alias for one release."""

import sys

import biomedica.archive.enrichment as _moved

sys.modules[__name__] = _moved
