"""Moved to `biomedica.io.atomic`; this old import path stays as an alias for one release."""

import sys

import biomedica.io.atomic as _moved

sys.modules[__name__] = _moved
