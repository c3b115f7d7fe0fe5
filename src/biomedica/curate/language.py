"""Moved to `biomedica.text`; this old import path stays as an alias for one release."""

import sys

import biomedica.text as _moved

sys.modules[__name__] = _moved
