"""Moved to `biomedica.testing.servers`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.servers as _moved

sys.modules[__name__] = _moved
