"""Every ```bash and ```python block of README.md runs as written, offline, on the demo archive.

A block is left out only where README says so on the line right before it:
`<!-- readme-test: skip (REASON) -->` (network, a cluster, placeholder paths), so skipping
is visible and deliberate. The others run in README order, in one folder that holds what a
user has after `bash scripts/demo.sh` at the repository root: `demo-out/archive` (also as
`archive/`), `configs/` and `.venv` (this interpreter's environment); bash blocks with
`set -eo pipefail` and this environment's `biomedica` first on PATH, python blocks with this
interpreter. Hub downloads are off and proxies point at a closed port, so nothing is fetched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
SKIP = re.compile(r"^skip \((.+)\)$")
OPEN_FENCE = re.compile(r"^```(\S*)\s*$")
RUNNABLE = ("bash", "python")
BLOCK_TIMEOUT_S = 300
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: any request through a proxy fails at once


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    skip: str | None  # the reason README gives, or None: the block runs


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of `text` with their skip reason; a malformed or stray marker is an error."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: tuple[int, str | None] | None = None  # (line, reason) of a marker waiting for its fence
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.match(line)
        fence = OPEN_FENCE.match(line)
        if marker:
            reason = SKIP.match(marker.group(1))
            if reason is None:
                raise ValueError(f"README.md:{index + 1}: write the marker as <!-- readme-test: skip (REASON) -->")
            pending = (index + 1, reason.group(1))
        elif fence:
            end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"README.md:{index + 1}: code block never closed")
            skip = pending[1] if pending and pending[0] == index else None
            blocks.append(Block(fence.group(1), "\n".join(lines[index + 1:end]) + "\n", index + 1, skip))
            pending, index = None, end
        elif pending is not None:
            raise ValueError(f"README.md:{pending[0]}: a readme-test marker must be on the line right before a ``` block")
        index += 1
    if pending is not None:
        raise ValueError(f"README.md:{pending[0]}: a readme-test marker must be on the line right before a ``` block")
    return blocks


def test_markers_precede_blocks_and_give_a_reason():
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    runnable = [b for b in blocks if b.language in RUNNABLE]
    assert any(b.skip is None for b in runnable) and any(b.skip for b in runnable)
    assert not [b.line for b in blocks if b.skip and b.language not in RUNNABLE], "skip markers belong on bash/python blocks"


def test_parser_pairs_markers_with_the_next_block_only():
    text = "<!-- readme-test: skip (needs network) -->\n```bash\nx\n```\n```bash\ny\n```\n"
    assert [(b.code, b.skip) for b in readme_blocks(text)] == [("x\n", "needs network"), ("y\n", None)]
    with pytest.raises(ValueError, match="right before"):
        readme_blocks("<!-- readme-test: skip (r) -->\n\n```bash\nx\n```\n")
    with pytest.raises(ValueError, match="skip \\(REASON\\)"):
        readme_blocks("<!-- readme-test: skipped -->\n```bash\nx\n```\n")


def _workdir(root: Path) -> tuple[Path, dict[str, str]]:
    """A folder laid out like the repository root after `scripts/demo.sh`, and the environment to run in."""
    work = root / "repo"
    work.mkdir()
    (work / "configs").symlink_to(REPO / "configs", target_is_directory=True)
    bin_dir = Path(sys.executable).parent
    path = [str(bin_dir)]
    if not (bin_dir / "biomedica").exists():  # sources on PYTHONPATH without an installed entry point
        shim = root / "bin"
        shim.mkdir()
        (shim / "biomedica").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m biomedica.cli "$@"\n')
        (shim / "biomedica").chmod(0o755)
        path.insert(0, str(shim))
    if sys.prefix != sys.base_prefix:
        (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    else:  # not in a virtual environment: an activate script that puts this interpreter first
        (work / ".venv" / "bin").mkdir(parents=True)
        (work / ".venv" / "bin" / "activate").write_text(f'export PATH="{os.pathsep.join(path)}:$PATH"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("BIOMEDICA_EVAL_DATA", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"  # the annotation app the README talks to
    return work, env


def _run(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, str]:
    """Run in a new session and kill the whole group afterwards (servers a block left in the background)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = -1
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return code, log.read_text(encoding="utf-8", errors="replace")[-4000:]


@pytest.mark.slow
def test_readme_blocks_run_on_the_demo(tmp_path):
    blocks = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.language in RUNNABLE]
    work, env = _workdir(tmp_path)
    code, output = _run(["biomedica", "demo", "--out", "demo-out"], work, env, tmp_path / "demo.log")
    assert code == 0, f"building the demo archive failed:\n{output}"
    (work / "archive").symlink_to("demo-out/archive", target_is_directory=True)
    ran = 0
    for number, block in enumerate(blocks):
        if block.skip:
            continue
        if block.language == "bash":
            argv = ["bash", "-c", "set -eo pipefail\n" + block.code]
        else:
            argv = [sys.executable, "-c", block.code]
        code, output = _run(argv, work, env, tmp_path / f"block-{number:02d}.log")
        where = "timed out" if code == -1 else f"exited {code}"
        assert code == 0, f"README.md:{block.line} ({block.language} block) {where}:\n{block.code}\n--- output ---\n{output}"
        ran += 1
    assert ran >= 5
