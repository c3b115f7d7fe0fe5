"""Moved to `biomedica.cli.summary`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.summary as _moved

sys.modules[__name__] = _moved
