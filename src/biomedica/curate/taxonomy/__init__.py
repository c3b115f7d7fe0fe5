"""Moved to `biomedica.taxonomy`; this old import path stays as an alias for one release."""

import sys

import biomedica.taxonomy as _moved

sys.modules[__name__] = _moved
