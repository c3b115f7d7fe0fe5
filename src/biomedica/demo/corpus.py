"""Moved to `biomedica.testing.corpus.corpus`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.corpus.corpus as _moved

sys.modules[__name__] = _moved
