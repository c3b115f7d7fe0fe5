"""Moved to `biomedica.testing.cloud_mirror`; this old import path stays as an alias for one release."""

import sys

import biomedica.testing.cloud_mirror as _moved

sys.modules[__name__] = _moved
