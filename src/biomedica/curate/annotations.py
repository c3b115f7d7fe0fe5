"""Moved to `biomedica.archive.annotations`; this old import path stays as an alias for one release."""

import sys

import biomedica.archive.annotations as _moved

sys.modules[__name__] = _moved
