"""Moved to `biomedica.testing.corpus.nxml`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.corpus.nxml as _moved

sys.modules[__name__] = _moved
