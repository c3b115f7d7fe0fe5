"""A small real archive with known duplicates, built once per test session (shared by curate/select/annotate tests).

The demo corpus (real DICOM / scikit-image / chart figures) plus hand-made duplicates:
- PMC9000100: a copy of PMC9000004 under a new PMCID: both images byte-identical (exact);
- PMC9000101: a copy of PMC9000008 whose first image is downscaled to 80% and re-encoded
  (a near-duplicate with different bytes), and whose second image is kept byte-identical.
Load with `load_factory()`; conftests call `build(tmp_path_factory)`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from PIL import Image

MODULE_NAME = "biomedica_tests_archive_factory"
_CACHE: dict[str, Path] = {}


def _clone_article(corpus: Path, source: str, target: str) -> Path:
    src_dir = corpus / f"PMC{source}"
    dst_dir = corpus / f"PMC{target}"
    shutil.copytree(src_dir, dst_dir)
    xml = dst_dir / f"PMC{source}.nxml"
    xml.write_text(xml.read_text(encoding="utf-8").replace(source, target), encoding="utf-8")
    for path in dst_dir.iterdir():  # hrefs carry the PMCID: rename the files with it
        if source in path.name:
            path.rename(dst_dir / path.name.replace(source, target))
    return dst_dir


def build(tmp_path_factory) -> Path:
    """The archive folder (built on first call, then reused)."""
    if "archive" in _CACHE:
        return _CACHE["archive"]
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    root = tmp_path_factory.mktemp("curation-archive")
    corpus = root / "corpus"
    write_demo_corpus(corpus, DemoCorpusConfig(n_articles=12, seed=0))
    _clone_article(corpus, "9000004", "9000100")
    near = _clone_article(corpus, "9000008", "9000101")
    first_jpg = sorted(near.glob("*.jpg"))[0]
    with Image.open(first_jpg) as image:
        smaller = image.convert("RGB").resize((int(image.width * 0.8), int(image.height * 0.8)), Image.Resampling.LANCZOS)
    smaller.save(first_jpg, quality=85)
    archive = root / "archive"
    run_ingest(IngestConfig(input=corpus, output=archive, workers=1, articles_per_unit=5, progress=False))
    _CACHE["archive"] = archive
    return archive


def load_factory():
    """This module, imported once under a fixed name (conftests of several folders share its cache)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, Path(__file__))
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def copy_with_undecodable_image(archive: Path, target: Path, key: str) -> Path:
    """A copy of `archive` at `target` whose sample `key` holds bytes no decoder reads (same format name, same key).

    Ingest refuses such images, so they are planted afterwards: the sample's shard is rewritten
    with the archive's own ShardWriter (index offsets stay right); every other sample is unchanged.
    """
    from biomedica.archive.reader import iter_shard, shard_paths
    from biomedica.archive.shard_writer import ShardWriter
    from biomedica.io.atomic import publish
    from biomedica.records import FigureRecord

    shutil.copytree(archive, target)
    for _, tar in shard_paths(target):
        samples = list(iter_shard(tar))
        if key not in {record["key"] for record, _ in samples}:
            continue
        writer = ShardWriter(tar, tar.with_suffix(".parquet"))
        for record, image in samples:
            if record["key"] == key:  # the format's signature, then noise: identified by name, never decoded
                image = (b"\x89PNG\r\n\x1a\n" if record["image_format"] == "png" else b"\xff\xd8\xff\xe0") + b"\x00" * 64
            writer.add(FigureRecord(**record), image, record["image_format"])
        for temporary, final in writer.finish().renames:
            publish(temporary, final)
        return target
    raise KeyError(f"{key} is not in {archive}")
