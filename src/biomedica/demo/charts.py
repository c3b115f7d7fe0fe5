"""Moved to `biomedica.testing.corpus.charts`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.corpus.charts as _moved

sys.modules[__name__] = _moved
