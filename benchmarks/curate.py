"""Curation speed: pHash hashing, near-duplicate search, embedding, clustering, select.

Usage:
    python benchmarks/curate.py                 # everything, sizes below
    python benchmarks/curate.py --quick         # small sizes (a smoke run, ~1 minute)
    python benchmarks/curate.py --only dedup,select

What each row measures:
- hash: perceptual_hash of the real PMC JPEG figures in ../shared/fixtures (600-900 px),
  with reduced-size JPEG decoding (PIL draft, the default) and with a full decode;
- dedup: `hamming_pairs` self-join of N random 64-bit hashes with planted near-duplicates
  (threshold 6), and `find_duplicates` end to end on N rows; "pairs/s" is the all-pairs
  comparisons the index avoids (N(N-1)/2 / time), next to the candidates it really checks;
- embed: images/s of a tiny random OpenCLIP model on CPU (decode + preprocess + forward);
- cluster: PCA 64 -> 64 + K-means k=2,000 on 1M random 64-d vectors (faiss when installed,
  scikit-learn otherwise). K-means trains on k x 256 = 512k sampled vectors (faiss's rule),
  then assigns all 1M; `--cluster-n` smaller measures less and extrapolates linearly in N
  (said in the table);
- select: rows/s of `run_select` (DuckDB: join of shard index + dedup + quality + concepts,
  filters, concept-balanced cap, manifest written) over a synthetic archive index of N rows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO.parent / "shared" / "fixtures" / "images" / "pmc_package_figures"


def _row(table: list, name: str, size: str, seconds: float, rate: str, note: str = "") -> None:
    table.append((name, size, f"{seconds:.2f}", rate, note))
    print(f"  {name}: {size} in {seconds:.2f} s ({rate}) {note}", file=sys.stderr)


def bench_hash(table: list, repeat: int) -> None:
    from PIL import Image

    from biomedica.images.phash import perceptual_hash

    files = [p.read_bytes() for p in sorted(FIGURES.rglob("*.jpg"))]
    if not files:
        _row(table, "hash (pHash)", "-", 0.0, "-", f"no JPEG fixtures under {FIGURES}")
        return
    for mode in ("draft", "full"):
        start = time.perf_counter()
        for _ in range(repeat):
            for data in files:
                image = Image.open(io.BytesIO(data))
                if mode == "full":
                    image.load()
                perceptual_hash(image)
        seconds = time.perf_counter() - start
        n = repeat * len(files)
        _row(table, f"hash pHash, JPEG {mode} decode", f"{n} images", seconds, f"{n / seconds:,.0f} images/s",
             "real PMC figures 600-900 px")


def bench_dedup(table: list, n: int) -> None:
    from biomedica.curate.config import DedupConfig
    from biomedica.curate.dedup import DEDUP_INPUT_COLUMNS, find_duplicates
    from biomedica.curate.hamming import hamming_pairs, plan_chunks
    from biomedica.testing.scale_data import planted_hashes

    hashes = planted_hashes(n)
    unique = np.unique(hashes)
    start = time.perf_counter()
    found = sum(len(q) for q, _, _ in hamming_pairs(unique, None, 6))
    seconds = time.perf_counter() - start
    all_pairs = n * (n - 1) / 2
    plan = plan_chunks(len(unique), 6)
    _row(table, "dedup index (hamming_pairs, t=6)", f"{n:,} hashes", seconds,
         f"{all_pairs / seconds:,.0f} pairs/s (all-pairs equivalent)",
         f"{found:,} pairs found; {len(plan.widths)} chunks, radius {plan.radius}")
    index = pa.table({
        "key": [f"PMC{i:08d}_000" for i in range(n)],
        "pmcid": [f"PMC{i // 4:08d}" for i in range(n)],
        "sha256": [f"{i:064x}" for i in range(n)],
        "phash": [f"{int(h):016x}" for h in hashes],
        "width": pa.array(np.full(n, 512), pa.int32()),
        "height": pa.array(np.full(n, 512), pa.int32()),
        "license_group": ["commercial"] * n,
    }).select(DEDUP_INPUT_COLUMNS)
    start = time.perf_counter()
    result = find_duplicates(index, DedupConfig(near_threshold=6))
    seconds = time.perf_counter() - start
    groups = len(set(result.column("dup_group").to_pylist()))
    _row(table, "dedup end to end (find_duplicates)", f"{n:,} samples", seconds, f"{n / seconds:,.0f} samples/s",
         f"{groups:,} groups")


def bench_embed(table: list, n_images: int) -> None:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        _row(table, "embed", "-", 0.0, "-", "open_clip not installed")
        return
    from biomedica.curate.config import EmbedConfig
    from biomedica.curate.embed import load_encoder
    from biomedica.models import decode_image

    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "bench-tiny-clip.json"
        config_path.write_text(json.dumps({
            "embed_dim": 64,
            "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
        }))
        encoder = load_encoder(EmbedConfig(model="bench-tiny-clip", model_config_json=config_path, device="cpu"))
        files = [p.read_bytes() for p in sorted(FIGURES.rglob("*.jpg"))]
        images_bytes = (files * (n_images // max(1, len(files)) + 1))[:n_images]
        start = time.perf_counter()
        for batch_start in range(0, len(images_bytes), 64):
            batch = [decode_image(b, encoder.image_size) for b in images_bytes[batch_start : batch_start + 64]]
            encoder.image_vectors(batch)
        seconds = time.perf_counter() - start
    import torch

    _row(table, "embed (tiny OpenCLIP ViT, 64 px, CPU)", f"{n_images} images", seconds,
         f"{n_images / seconds:,.0f} images/s", f"decode+preprocess+forward, {torch.get_num_threads()} threads")



def bench_cluster(table: list, n: int, k: int, backend: str = "auto") -> None:
    from biomedica.curate.cluster import assign_clusters, faiss_available, fit_clusters
    from biomedica.curate.config import ClusterConfig

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 64)).astype(np.float16)
    config = ClusterConfig(embeddings="bench", k=k, pca_dim=64, iterations=10, max_points_per_centroid=256,
                           backend=backend)
    start = time.perf_counter()
    model = fit_clusters(vectors, config)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    assign_clusters(model, vectors)
    assign_seconds = time.perf_counter() - start
    backend = model.info["backend"]
    note = f"{backend}, train {model.info['train_vectors']:,} vectors x 10 iterations"
    _row(table, f"cluster fit {backend} (PCA + K-means k={k:,})", f"{n:,} x 64-d", fit_seconds, f"{fit_seconds:.1f} s", note)
    assigner = "faiss flat index" if faiss_available() else "numpy"
    _row(table, f"cluster assign ({assigner})", f"{n:,} x 64-d", assign_seconds, f"{n / assign_seconds:,.0f} vectors/s")
    if n < 1_000_000:
        # fit cost grows with the training sample (min(n, 256 k)); assignment is linear in n
        train_full = min(1_000_000, 256 * k)
        fit_full = fit_seconds * train_full / model.info["train_vectors"]
        total = fit_full + assign_seconds * 1_000_000 / n
        _row(table, f"cluster {backend} 1M x 64-d k={k:,} (extrapolated)", "1,000,000 x 64-d", total, f"{total:.0f} s",
             f"from {n:,}: fit x{train_full / model.info['train_vectors']:.1f}, assign x{1_000_000 / n:.0f}")


def _synthetic_archive(root: Path, n: int) -> Path:
    """An archive index (markers + shard Parquet, no tars) and annotation tables with n rows."""
    from biomedica.archive.layout import ArchiveLayout
    from biomedica.archive.units import ShardInfo, UnitStats
    from biomedica.curate.concepts import CONCEPTS_SCHEMA
    from biomedica.records import SHARD_SCHEMA

    layout = ArchiveLayout(root)
    layout.units_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per_unit = 100_000
    concepts = ["clinical_imaging", "microscopy", "plots_and_charts", "illustrative_diagrams", "tables"]
    dedup_rows, quality_rows, concept_rows = [], [], []
    for unit in range(0, (n + per_unit - 1) // per_unit):
        count = min(per_unit, n - unit * per_unit)
        keys = [f"PMC{unit:03d}{i:07d}_000" for i in range(count)]
        columns = {f.name: pa.nulls(count, f.type) for f in SHARD_SCHEMA}
        columns.update(
            key=pa.array(keys), pmcid=pa.array([k[:13] for k in keys]), caption=pa.array(["A caption."] * count),
            year=pa.array(rng.integers(2000, 2025, count).astype(np.int32)), license_group=pa.array(["commercial"] * count),
            journal=pa.array(rng.choice(["J A", "J B", "J C"], count)), shard=pa.array([f"{unit:06d}.tar"] * count),
            image_offset=pa.array(np.arange(count, dtype=np.int64) * 4096), image_size=pa.array(np.full(count, 1000, np.int64)),
            txt_offset=pa.array(np.zeros(count, np.int64)), txt_size=pa.array(np.zeros(count, np.int64)),
            json_offset=pa.array(np.zeros(count, np.int64)), json_size=pa.array(np.zeros(count, np.int64)),
            mentions=pa.array([[]] * count, pa.list_(pa.string())), keywords=pa.array([[]] * count, pa.list_(pa.string())),
            subjects=pa.array([[]] * count, pa.list_(pa.string())),
        )
        layout.group_dir("commercial").mkdir(exist_ok=True)
        pq.write_table(pa.table(columns, schema=SHARD_SCHEMA), layout.shard_index("commercial", unit))
        marker = UnitStats(unit_id=unit, articles=count, samples={"commercial": count}, errors=0, bytes=0,
                           shards={"commercial": ShardInfo(f"{unit:06d}.tar", count, 0, "")})
        layout.marker(unit).write_text(json.dumps(marker.to_dict()))
        canonical = rng.random(count) > 0.1
        dedup_rows.append(pa.table({"key": keys, "canonical": canonical, "leak": np.zeros(count, bool)}))
        ok = rng.random(count) > 0.05
        quality_rows.append(pa.table({"key": keys, "quality_ok": ok,
                                      "flags": pa.array([[] if o else ["tiny-image"] for o in ok], pa.list_(pa.string()))}))
        chosen = rng.choice(concepts, count, p=[0.3, 0.2, 0.35, 0.1, 0.05])
        concept_rows.append(pa.table({
            "key": keys, "zs_global": chosen, "zs_global_score": pa.array(rng.random(count).astype(np.float32)),
            "zs_local": chosen, "zs_local_score": pa.array(rng.random(count).astype(np.float32)),
            "zs_local_top": pa.array([[c] for c in chosen], pa.list_(pa.string())),
            "zs_local_top_scores": pa.array([[0.5]] * count, pa.list_(pa.float32())),
            "taxonomy": ["biomedica 1.0.0"] * count, "model": ["bench"] * count,
        }, schema=CONCEPTS_SCHEMA))
    annotations = root / "annotations"
    annotations.mkdir()
    pq.write_table(pa.concat_tables(dedup_rows), annotations / "dedup.parquet")
    pq.write_table(pa.concat_tables(quality_rows), annotations / "quality.parquet")
    pq.write_table(pa.concat_tables(concept_rows), annotations / "concepts.parquet")
    return root


def bench_select(table: list, n: int) -> None:
    from biomedica.select import SelectConfig, run_select

    with tempfile.TemporaryDirectory() as tmp:
        archive = _synthetic_archive(Path(tmp) / "archive", n)
        for name, options in (
            ("select filters (canonical, quality, years)", dict(canonical_only=True, drop_flags=["any"], min_year=2010)),
            ("select concept-balanced (cap 50k)", dict(canonical_only=True, strategy="concept-balanced",
                                                      cap_per_concept=50_000)),
        ):
            out = Path(tmp) / name.split()[1]
            start = time.perf_counter()
            result = run_select(SelectConfig(archive=archive, out=out, **options))
            seconds = time.perf_counter() - start
            _row(table, name, f"{n:,} rows", seconds, f"{n / seconds:,.0f} rows/s",
                 f"{result.selected:,} selected, manifest written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", default="hash,dedup,embed,cluster,select")
    parser.add_argument("--dedup-n", type=int, default=1_000_000)
    parser.add_argument("--cluster-n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=2000)
    parser.add_argument("--cluster-backend", default="auto", help="auto | faiss | sklearn")
    parser.add_argument("--select-n", type=int, default=1_000_000)
    parser.add_argument("--embed-n", type=int, default=512)
    args = parser.parse_args()
    if args.quick:
        args.dedup_n, args.cluster_n, args.k, args.select_n, args.embed_n = 50_000, 50_000, 200, 100_000, 128
    only = set(args.only.split(","))
    table: list = []
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}", file=sys.stderr)
    if "hash" in only:
        bench_hash(table, repeat=1 if args.quick else 5)
    if "dedup" in only:
        bench_dedup(table, args.dedup_n)
    if "embed" in only:
        bench_embed(table, args.embed_n)
    if "cluster" in only:
        bench_cluster(table, args.cluster_n, args.k, args.cluster_backend)
    if "select" in only:
        bench_select(table, args.select_n)
    header = ("benchmark", "size", "seconds", "rate", "note")
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(5)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
