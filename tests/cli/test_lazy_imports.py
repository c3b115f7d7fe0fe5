"""`biomedica --help` stays fast: the CLI imports no stage, torch, pyarrow or web stack until a command runs.

typer itself imports pydantic to build a command's options, so pydantic is not on the list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import biomedica

HEAVY = ("torch", "pyarrow", "open_clip", "fastapi", "uvicorn", "duckdb", "numpy", "PIL", "sklearn", "yaml")

_PROBE = """
import json, sys
sys.argv = ["biomedica", *sys.argv[1:]]
import biomedica.cli
if len(sys.argv) > 1:
    try:
        biomedica.cli.app()
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*argv: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(biomedica.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [(), ("--help",), ("ingest", "--help"), ("curate", "--help"), ("train", "--help"),
                                  ("eval", "--help"), ("annotate", "--help"), ("select", "--help")])
def test_help_imports_no_stage_and_no_heavy_package(argv):
    modules = _modules_after(*argv)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    stages = sorted(m for m in modules if m.startswith("biomedica.") and not m.startswith("biomedica.cli"))
    assert not heavy and not stages, (heavy, stages)
