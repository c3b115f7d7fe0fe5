"""Moved to `biomedica.testing.corpus.captions`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.corpus.captions as _moved

sys.modules[__name__] = _moved
