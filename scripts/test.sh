#!/usr/bin/env bash
# Install biomedica with every test dependency (torch CPU/CUDA build, open_clip, ...) and run
# the whole test suite. Extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
install_torch
pip_install -e ".[test]"
exec "$VENV/bin/python" -m pytest -q "$@"
