#!/usr/bin/env bash
# Install biomedica (core + demo extra, no torch) and run the demo end to end, offline.
source "$(dirname "$0")/_venv.sh"
pip_install -e ".[demo]"
"$VENV/bin/biomedica" demo --out demo-out "$@"
echo "biomedica is in $(cd "$VENV" && pwd)/bin; in a new shell, first run: source $(cd "$VENV" && pwd)/bin/activate" >&2
