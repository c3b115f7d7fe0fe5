"""A missing optional package is one line naming the extra that installs it, exit 2 (never a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import biomedica

SRC = Path(biomedica.__file__).resolve().parents[1]  # the sources this test runs against

# `import NAME` raises ImportError when sys.modules holds None for it: the package looks uninstalled
RUN_WITHOUT = (
    "import sys\n"
    "for name in sys.argv[1].split(','): sys.modules[name] = None\n"
    "sys.argv = ['biomedica', *sys.argv[2:]]\n"
    "from biomedica.cli import app\n"
    "app()\n"
)


def _run_without(missing: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(SRC), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT, missing, *args], cwd=cwd, env=env,
                          check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize(("missing", "command", "extra"), [
    ("open_clip", ["curate", "embed", "ARCHIVE", "--model", "tiny-random", "--no-progress"], "clip"),
    ("open_clip", ["curate", "zeroshot", "ARCHIVE", "--model", "tiny-random"], "clip"),
    ("torch,open_clip", ["eval", "run", "--model", "tiny-random", "--tasks", "TASK", "--data-dir", "DATA",
                         "--out", "OUT", "--no-progress"], "clip"),
    ("open_clip_train,open_clip", ["train", "run", "CONFIG"], "clip"),
    ("fastapi,uvicorn", ["annotate", "ARCHIVE"], "annotate"),
    ("fastapi", ["serve", "ARCHIVE"], "serve"),
    ("uvicorn", ["serve", "ARCHIVE"], "serve"),
    ("python_multipart,multipart", ["serve", "ARCHIVE"], "serve"),
    ("tantivy", ["serve", "ARCHIVE"], "serve"),
    ("tantivy", ["index", "ARCHIVE", "--index", "OUT"], "index"),
    ("faiss", ["index", "ARCHIVE", "--index", "OUT"], "index"),
    ("boto3,botocore", ["ingest", "--source", "pmc-cloud", "--select", "prefix", "--out", "OUT", "--no-progress",
                        "--endpoint-url", "http://127.0.0.1:9"], "cloud"),
    ("ray", ["ingest", "CORPUS", "--out", "OUT", "--executor", "ray", "--no-progress"], "ray"),
])
def test_missing_extra_is_one_line(tmp_path, demo_archive, demo_corpus, missing, command, extra):
    data = tmp_path / "data" / "a"
    data.mkdir(parents=True)
    (data / "x.png").write_bytes(b"")
    (tmp_path / "t.yaml").write_text("name: t\ndomain: x\nkind: classification\nclasses: [a, b]\n"
                                     "dataset: {adapter: imagefolder, root: data}\n")
    (tmp_path / "c.yaml").write_text(
        f"name: r\noutput_dir: {tmp_path / 'runs'}\nmodel: {{name: biomedica-tiny}}\ndevice: cpu\n"
        f"data: {{sources: [{{name: a, archive: {demo_archive}}}]}}\n"
        "schedule: {total_steps: 1, checkpoint_every_steps: 1}\noptim: {batch_size: 2}\n"
    )
    places = {"ARCHIVE": demo_archive, "TASK": tmp_path / "t.yaml", "DATA": tmp_path, "OUT": tmp_path / "out",
              "CONFIG": tmp_path / "c.yaml", "CORPUS": demo_corpus}
    done = _run_without(missing, *[str(places.get(a, a)) for a in command], cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(errors) == 1 and f"pip install 'biomedica[{extra}]'" in errors[0], done.stderr[-3000:]
