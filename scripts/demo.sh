#!/usr/bin/env bash
# Install biomedica (core + demo extra, no torch) and run the demo end to end, offline.
source "$(dirname "$0")/_venv.sh"
pip_install -e ".[demo]"
exec "$VENV/bin/biomedica" demo --out demo-out "$@"
