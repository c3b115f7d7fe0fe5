"""Every writer takes the lock of what it writes; a locked folder refuses it before anything is written."""

import subprocess
import sys
from pathlib import Path

import pytest

from biomedica.cli.demo import run_demo
from biomedica.curate.run import run_curate
from biomedica.enrich import EnrichConfig, enrich_archive
from biomedica.io.lock import LOCK_NAME, ArchiveLocked
from biomedica.select import SelectConfig, run_select

_HOLDER = """
import sys
from biomedica.io.lock import ArchiveLock
with ArchiveLock(sys.argv[1], "biomedica ingest"):
    print("held", flush=True)
    sys.stdin.readline()
"""


class _Held:
    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def __enter__(self) -> "_Held":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.communicate("\n", timeout=30)


def test_enrich_and_curate_are_refused_while_the_archive_is_written(demo_archive, tmp_path):
    with _Held(demo_archive):
        with pytest.raises(ArchiveLocked, match="is being written by `biomedica ingest`"):
            enrich_archive(EnrichConfig(archive=demo_archive, progress=False))
        with pytest.raises(ArchiveLocked):
            run_curate(demo_archive, steps=("quality",))
        assert not (demo_archive / "enrichment").exists() and not (demo_archive / "annotations").exists()
        # annotations in a folder of their own lock that folder, not the archive being written
        (result,) = run_curate(demo_archive, annotations=tmp_path / "ann", steps=("quality",))
        assert result.path == tmp_path / "ann" / "quality.parquet" and result.path.is_file()
    assert not (tmp_path / "ann" / LOCK_NAME).exists()


def test_select_locks_its_out_folder(demo_archive, tmp_path):
    out = tmp_path / "subset"
    with _Held(out):
        with pytest.raises(ArchiveLocked, match=f"{out.resolve()} is being written by"):
            run_select(SelectConfig(archive=demo_archive, out=out))
    result = run_select(SelectConfig(archive=demo_archive, out=out))  # the lock file is not "an earlier output"
    assert result.selected > 0 and not (out / LOCK_NAME).exists()


def test_demo_leaves_an_archive_being_written_alone(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "kept.txt").write_text("written by the other writer")
    with _Held(archive):
        with pytest.raises(ArchiveLocked, match="is being written by `biomedica ingest`"):
            run_demo(tmp_path, n_articles=4, workers=1)
        assert sorted(p.name for p in archive.iterdir()) == sorted([LOCK_NAME, "kept.txt"])
        assert not (tmp_path / "corpus").exists()
    summary = run_demo(tmp_path, n_articles=4, workers=1)  # free again: built beside what is there, deleting nothing
    assert summary.samples_total > 0 and (archive / "kept.txt").read_text() == "written by the other writer"
    assert (archive / "manifest.json").is_file() and not (archive / LOCK_NAME).exists()


def test_curate_into_an_outside_folder_keeps_its_errors_there(demo_archive, tmp_path):
    """Errors go under the folder the run locks: another annotation set's errors in the archive stay as they were."""
    import shutil

    from biomedica.archive.errors import ErrorSink
    from biomedica.curate.config import DedupConfig
    from biomedica.records import ErrorRecord

    archive = tmp_path / "archive"
    shutil.copytree(demo_archive, archive)
    theirs = ErrorRecord(id="x", stage="curate", kind="shard-unreadable", message="set A's")
    archive_sink = ErrorSink(archive, "curate")
    before = {part: archive_sink.write(part, [theirs]).read_bytes() for part in ("dedup", "panels")}
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "broken.png").write_bytes(b"\x89PNG not really")  # one dedup error of this run
    results = run_curate(archive, annotations=tmp_path / "ann", steps=("dedup", "panels"),
                         dedup=DedupConfig(eval_images=eval_dir))
    assert [r.counts["errors"] for r in results] == [1, 0]
    assert {part: archive_sink.path(part).read_bytes() for part in ("dedup", "panels")} == before
    assert sorted(p.name for p in (tmp_path / "ann" / "errors").iterdir()) == ["curate-dedup.parquet"]


def test_every_annotations_writer_locks_in_the_library(demo_archive, tmp_path):
    """embed, cluster, zeroshot and the annotate export take the lock themselves, not only behind the CLI."""
    from biomedica.annotate.app import AnnotateConfig, export_labels
    from biomedica.annotate.store import LabelStore
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.cluster import cluster_embeddings
    from biomedica.curate.concepts import zero_shot_labels
    from biomedica.curate.config import ClusterConfig, EmbedConfig, ZeroShotConfig
    from biomedica.curate.embed import embed_archive

    store = AnnotationStore(tmp_path / "ann")
    embed = EmbedConfig(model="tiny-random", device="cpu", progress=False)
    LabelStore(store.root / "labels.sqlite").close()
    with _Held(store.root):
        for write in (lambda: embed_archive(demo_archive, store, embed),
                      lambda: cluster_embeddings(demo_archive, store, ClusterConfig(embeddings="tiny-random", k=2)),
                      lambda: zero_shot_labels(demo_archive, store, ZeroShotConfig(embed=embed)),
                      lambda: export_labels(AnnotateConfig(archive=demo_archive, annotations=store.root))):
            with pytest.raises(ArchiveLocked, match="is being written by `biomedica ingest`"):
                write()
    assert sorted(p.name for p in store.root.iterdir()) == ["labels.sqlite"]
