"""Moved to `biomedica.exec.ray_tasks`; this old import path stays as an alias for one release."""

import sys

import biomedica.exec.ray_tasks as _moved

sys.modules[__name__] = _moved
