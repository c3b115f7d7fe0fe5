"""Moved to `biomedica.cli.select`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.select as _moved

sys.modules[__name__] = _moved
