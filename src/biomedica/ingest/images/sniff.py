"""Moved to `biomedica.images.sniff`; this old import path stays as an alias for one release."""

import sys

import biomedica.images.sniff as _moved

sys.modules[__name__] = _moved
