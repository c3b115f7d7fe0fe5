"""Moved to `biomedica.cli.eval`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.eval as _moved

sys.modules[__name__] = _moved
