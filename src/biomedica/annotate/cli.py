"""Moved to `biomedica.cli.annotate`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.annotate as _moved

sys.modules[__name__] = _moved
