"""Moved to `biomedica.cli.curate`; this old import path stays as an alias for one release."""

import sys

import biomedica.cli.curate as _moved

sys.modules[__name__] = _moved
