"""Moved to `biomedica.exec.job_array`; this old import path stays as an alias for one release."""

import sys

import biomedica.exec.job_array as _moved

sys.modules[__name__] = _moved
