#!/usr/bin/env bash
# Install biomedica with every test dependency (torch CPU/CUDA build, open_clip, ...) and run
# the whole test suite. Extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
install_torch
# The annotation app is tested in a real browser: Debian's Chromium, driven by Playwright.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
pip_install -e ".[test]"
# CLIP_benchmark, for the test comparing our metrics with its own code (tests/eval/test_compat_clip_benchmark.py).
# --no-deps: its metric modules need only torch, tqdm and scikit-learn (all in the eval extra); its declared
# transformers + pycocoevalcap (~120 MB, captioning only) stay out, so it cannot be a line in the `test` extra.
pip_install --no-deps clip-benchmark==1.6.2
# The layering in ARCHITECTURE.md (contracts in pyproject.toml): stages never import each other.
"$VENV/bin/lint-imports"
# Two workers (pytest-xdist): the suite takes ~8 min serial on a 2-core machine, ~5 with two.
# PYTEST_WORKERS=0 runs it serially; arguments after the script go to pytest.
exec "$VENV/bin/python" -m pytest -q -n "${PYTEST_WORKERS:-2}" "$@"
