"""Inputs that would hang, exhaust memory or leak a file: refused and recorded (issue 10, item 7).

FIFOs, devices and symlinks out of the input folder are never opened; one XML or image file
costs at most its cap. Each ingest runs in a child process under a timeout and a memory
limit, so a regression fails the test instead of blocking the suite or filling the machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

STEM = "nihpp-2023.12.31.573776v1"
CHILD_SECONDS = 60
CHILD_MEMORY = 3 * 1024**3  # address space: far above an ingest of one article, far below /dev/zero's appetite

_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import pyarrow.parquet as pq
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    folder, out, extra = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    run_ingest(IngestConfig(input=folder, output=out, progress=False, **extra))
    rows = [r for p in sorted(out.glob("*/[0-9]*.parquet")) for r in pq.read_table(p).to_pylist()]
    errors = [r for p in sorted((out / "errors").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    print(json.dumps({"images": sorted(r["image_name"] for r in rows), "errors": errors}))
    """
)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def ingest_in_child(folder: Path, out: Path, **extra) -> dict:
    """Ingest `folder` in a child process; a hang or runaway read fails the test, never blocks it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    read_end, write_end = os.pipe()  # the child's stdin: open and silent, as a terminal would be
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(folder), str(out), json.dumps(extra)],
            check=False, stdin=read_end, capture_output=True, text=True, env=env, timeout=CHILD_SECONDS,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ingest of {folder} did not finish in {CHILD_SECONDS} s: an input blocked it")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def article(fixtures_dir, tmp_path) -> Path:
    """The real package PMC10802347 as a folder: its nxml and 4 figures (f0001 only as .gif)."""
    folder = tmp_path / "in" / "PMC10802347"
    folder.mkdir(parents=True)
    for path in (fixtures_dir / "pmc_packages" / "PMC10802347").iterdir():
        if not path.name.endswith(".txt"):
            shutil.copyfile(path, folder / path.name)
    return folder


def _by_kind(result: dict) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for error in result["errors"]:
        kinds.setdefault(error["kind"], []).append(error)
    return kinds


def test_a_fifo_named_like_a_figure_is_refused_not_opened(article, tmp_path):
    (article / f"{STEM}-f0002.jpg").unlink()
    os.mkfifo(article / f"{STEM}-f0002.jpg")
    result = ingest_in_child(article.parent, tmp_path / "out")
    refused = _by_kind(result)["not-a-regular-file"]
    assert len(refused) == 1 and "FIFO" in refused[0]["message"] and f"{STEM}-f0002.jpg" in refused[0]["message"]
    assert f"{STEM}-f0003.jpg" in result["images"]
    assert f"{STEM}-f0002.gif" not in result["images"]  # the thumbnail never stands in for a refused file


def test_a_fifo_or_device_named_like_an_xml_file_is_refused(article, tmp_path):
    os.mkfifo(article.parent / "PMC99.nxml")
    os.symlink("/dev/null", article / "link-to-dev-null.xml")
    result = ingest_in_child(article.parent, tmp_path / "out")
    kinds = _by_kind(result)
    assert [e["source"] for e in kinds["not-a-regular-file"]] == ["PMC99.nxml"]
    assert [e["source"] for e in kinds["symlink-outside-input"]] == ["PMC10802347/link-to-dev-null.xml"]
    assert len(result["images"]) == 4  # the real article is ingested as before


def test_a_symlink_to_dev_zero_is_refused_without_reading_it(article, tmp_path):
    (article / f"{STEM}-f0004.jpg").unlink()
    os.symlink("/dev/zero", article / f"{STEM}-f0004.jpg")
    result = ingest_in_child(article.parent, tmp_path / "out")
    refused = _by_kind(result)["symlink-outside-input"]
    assert len(refused) == 1 and "leads out of the input folder" in refused[0]["message"]
    assert f"{STEM}-f0004.gif" not in result["images"]


def test_symlinks_inside_the_input_are_read_and_outside_ones_refused(article, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (article / f"{STEM}-f0003.jpg").rename(outside / "real.jpg")
    os.symlink(outside / "real.jpg", article / f"{STEM}-f0003.jpg")  # out of the input: refused
    shared = article.parent / "shared"
    shared.mkdir()
    (article / f"{STEM}-f0002.jpg").rename(shared / "real.jpg")
    os.symlink("../shared/real.jpg", article / f"{STEM}-f0002.jpg")  # inside the input: fine
    result = ingest_in_child(article.parent, tmp_path / "out")
    assert f"{STEM}-f0002.jpg" in result["images"]
    assert [e["source"] for e in _by_kind(result)["symlink-outside-input"]] == [
        f"PMC10802347/{STEM}-f0003.jpg"
    ]


def test_folder_symlinks_out_of_the_input_are_not_walked(article, fixtures_dir, tmp_path):
    os.symlink(fixtures_dir / "pmc_nxml", article.parent / "linked")
    from biomedica.ingest.sources.directory import DirectorySource

    assert DirectorySource(article.parent).list_items() == [f"PMC10802347/{STEM}.nxml"]


def test_size_caps_refuse_large_files_with_the_option_to_raise(article, tmp_path):
    result = ingest_in_child(article.parent, tmp_path / "images", max_image_bytes=150_000)
    too_large = _by_kind(result)["image-too-large"]
    assert [e["source"] for e in too_large] == [f"PMC10802347/{STEM}-f0004.jpg"]  # 162,514 bytes
    assert "162,514 bytes" in too_large[0]["message"] and "--max-image-bytes" in too_large[0]["message"]
    assert len(result["images"]) == 3

    result = ingest_in_child(article.parent, tmp_path / "xml", max_xml_bytes=100_000)
    (error,) = result["errors"]
    assert error["kind"] == "xml-too-large" and "--max-xml-bytes" in error["message"]
    assert result["images"] == []


def test_read_regular_file_reads_at_most_the_cap(tmp_path):
    from biomedica.ingest.sources.safe_read import InputRefused, read_regular_file

    path = tmp_path / "a.xml"
    path.write_bytes(b"x" * 101)
    assert read_regular_file(path, tmp_path, 101, "xml") == b"x" * 101
    with pytest.raises(InputRefused) as refused:
        read_regular_file(path, tmp_path, 100, "xml")
    assert refused.value.kind == "xml-too-large" and "101 bytes" in str(refused.value)
    # a device named by the user (no input folder): refused by its type before any open
    with pytest.raises(InputRefused) as refused:
        read_regular_file("/dev/zero", None, 100, "image")
    assert refused.value.kind == "not-a-regular-file" and "device" in str(refused.value)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "nope.xml", tmp_path, 100, "xml")


def test_new_settings_keep_older_archives_resumable(tmp_path):
    """An archive recorded before the caps existed resumes with the defaults, refuses other values."""
    from biomedica.ingest.config import IngestConfig
    from biomedica.io.settings import SettingsMismatch, check_settings

    old = {"source": "dir", "articles_per_unit": 500, "lossy_images": False, "jpeg_quality": 95,
           "max_image_pixels": 178_956_970}
    path = tmp_path / "_build_settings.json"
    path.write_text(json.dumps(old))
    config = IngestConfig(input=str(tmp_path), output=tmp_path / "a")
    defaults = IngestConfig.settings_defaults()
    assert check_settings(path, config.archive_settings(), "archive", "fix", defaults=defaults) == old
    changed = IngestConfig(input=str(tmp_path), output=tmp_path / "a", max_xml_bytes=1000)
    with pytest.raises(SettingsMismatch, match=r"max_xml_bytes: 67108864 -> 1000"):
        check_settings(path, changed.archive_settings(), "archive", "fix", defaults=defaults)


def _package(folder: Path) -> bytes:
    """A PMC-style gzip tar of a fixture folder (members under `PMC.../`)."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"{folder.name}/{path.name}")
    return buffer.getvalue()


def test_package_mirror_refuses_fifos_and_outside_symlinks_and_caps_members(article, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "PMC10802347.tar.gz").write_bytes(_package(article))
    os.mkfifo(mirror / "PMC2.tar.gz")
    (tmp_path / "PMC3.tar.gz").write_bytes(_package(article))
    os.symlink(tmp_path / "PMC3.tar.gz", mirror / "PMC3.tar.gz")
    result = ingest_in_child(mirror, tmp_path / "out", source="pmc-package", max_image_bytes=150_000)
    kinds = _by_kind(result)
    assert [e["id"] for e in kinds["not-a-regular-file"]] == ["PMC2.tar.gz"]
    assert [e["id"] for e in kinds["symlink-outside-input"]] == ["PMC3.tar.gz"]
    (too_large,) = kinds["image-too-large"]
    assert too_large["source"] == f"PMC10802347/{STEM}-f0004.jpg" and "--max-image-bytes" in too_large["message"]
    assert len(result["images"]) == 3

    result = ingest_in_child(mirror, tmp_path / "xml-cap", source="pmc-package", max_xml_bytes=100_000)
    assert "xml-too-large" in _by_kind(result) and result["images"] == []


def test_an_archive_recorded_before_the_caps_resumes(article, tmp_path):
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import SETTINGS_FILE, IngestSettingsMismatch, run_ingest

    out = tmp_path / "out"
    run_ingest(IngestConfig(input=article.parent, output=out, progress=False))
    recorded = json.loads((out / SETTINGS_FILE).read_text())
    older = {k: v for k, v in recorded.items() if k not in ("max_xml_bytes", "max_image_bytes")}
    (out / SETTINGS_FILE).write_text(json.dumps(older))
    summary = run_ingest(IngestConfig(input=article.parent, output=out, progress=False))
    assert summary.units_skipped == 1 and summary.samples_total == 4
    with pytest.raises(IngestSettingsMismatch, match="max_image_bytes"):
        run_ingest(IngestConfig(input=article.parent, output=out, progress=False, max_image_bytes=10))
