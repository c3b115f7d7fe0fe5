"""Moved to `biomedica.cli.demo`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.demo as _moved

sys.modules[__name__] = _moved
