# Sourced by demo.sh / test.sh: create .venv (once) and install biomedica with the given extras.
# TORCH_SPEC picks the torch build; the default matches the wheels cached on the project's
# machines (x86_64, Python 3.11). Elsewhere e.g. TORCH_SPEC="torch torchvision".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
install_torch() {
  if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    # shellcheck disable=SC2086
    pip_install ${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
  fi
}
