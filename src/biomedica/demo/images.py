"""Moved to `biomedica.testing.corpus.images`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.corpus.images as _moved

sys.modules[__name__] = _moved
