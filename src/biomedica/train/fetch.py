"""Moved to `biomedica.net.stream`; this old import path stays as an alias for one release."""

import sys

import biomedica.net.stream as _moved

sys.modules[__name__] = _moved

if __name__ == "__main__":  # old `pipe:` lines keep working, their --timeout/--backoff included (see net.stream)
    raise SystemExit(_moved.main())
