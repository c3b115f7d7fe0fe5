"""Moved to `biomedica.archive.labels`; this old import path stays as an alias for one release."""

import sys

import biomedica.archive.labels as _moved

sys.modules[__name__] = _moved
