"""Moved to `biomedica.cli.train`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.train as _moved

sys.modules[__name__] = _moved
