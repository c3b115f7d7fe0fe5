"""Zero-shot concept labels per image from a CLIP model and the taxonomy's text prompts.

Each local concept's text embedding is the normalised mean of its prompts (templates x
name and synonyms). An image's scores are a softmax over all local concepts of
`temperature x cosine`; a global concept's score is the sum of its local concepts' scores,
so the two levels never disagree. Rows of `annotations/concepts.parquet`:

key, zs_global, zs_global_score, zs_local, zs_local_score, zs_local_top (top-k ids),
zs_local_top_scores, taxonomy (name + version), model.

Image embeddings come from `annotations/embeddings/<model>/` (computed first when missing,
resumable), so labelling costs one matrix product once the archive is embedded. Scoring reads one
embedding part at a time (a unit of `exec.run_units`, local or Ray), never the whole archive's vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.annotations import AnnotationStore, annotations_lock
from biomedica.curate.config import ZeroShotConfig
from biomedica.exec import run_units
from biomedica.models.spec import no_text_tower, parse_model_spec
from biomedica.taxonomy import Taxonomy, load_taxonomy

CONCEPTS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("zs_global", pa.string()),
        ("zs_global_score", pa.float32()),
        ("zs_local", pa.string()),
        ("zs_local_score", pa.float32()),
        ("zs_local_top", pa.list_(pa.string())),
        ("zs_local_top_scores", pa.list_(pa.float32())),
        ("taxonomy", pa.string()),
        ("model", pa.string()),
    ]
)
SCORE_BLOCK = 32_768


def concept_text_embeddings(encoder, taxonomy: Taxonomy, batch_size: int = 256) -> np.ndarray:
    """[n_local, dim] float32: normalised mean prompt embedding of each local concept (prompts batched)."""
    prompts: list[str] = []
    owners: list[int] = []
    for index, concept in enumerate(taxonomy.local_concepts):
        for prompt in taxonomy.prompts(concept):
            prompts.append(prompt)
            owners.append(index)
    vectors = np.concatenate(
        [encoder.text_vectors(prompts[i : i + batch_size]) for i in range(0, len(prompts), batch_size)]
    )
    sums = np.zeros((len(taxonomy.local_concepts), vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, np.array(owners), vectors)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def score_concepts(
    keys: list[str], image_vectors: np.ndarray, text_vectors: np.ndarray, taxonomy: Taxonomy,
    top_k: int = 3, temperature: float = 100.0, model: str = "",
) -> pa.Table:
    """The concepts table for L2-normalised image vectors against local-concept text vectors."""
    local_ids = [c.id for c in taxonomy.local_concepts]
    global_ids = [c.id for c in taxonomy.global_concepts]
    owner = np.array([global_ids.index(c.global_id) for c in taxonomy.local_concepts])
    columns: dict[str, list] = {name: [] for name in CONCEPTS_SCHEMA.names}
    top_k = min(top_k, len(local_ids))
    text = text_vectors.astype(np.float32)
    for start in range(0, len(keys), SCORE_BLOCK):
        block = np.asarray(image_vectors[start : start + SCORE_BLOCK], dtype=np.float32)
        finite = np.isfinite(block).all(axis=1)
        logits = temperature * (np.nan_to_num(block) @ text.T)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        global_probs = np.zeros((len(block), len(global_ids)), dtype=np.float32)
        np.add.at(global_probs.T, owner, probs.T)
        top = np.argsort(-probs, axis=1)[:, :top_k]
        best_global = global_probs.argmax(axis=1)
        for row in range(len(block)):
            ok = bool(finite[row])
            columns["key"].append(keys[start + row])
            columns["zs_global"].append(global_ids[best_global[row]] if ok else None)
            columns["zs_global_score"].append(float(global_probs[row, best_global[row]]) if ok else None)
            columns["zs_local"].append(local_ids[top[row, 0]] if ok else None)
            columns["zs_local_score"].append(float(probs[row, top[row, 0]]) if ok else None)
            columns["zs_local_top"].append([local_ids[i] for i in top[row]] if ok else [])
            columns["zs_local_top_scores"].append([float(probs[row, i]) for i in top[row]] if ok else [])
    n = len(columns["key"])
    columns["taxonomy"] = [taxonomy.label()] * n
    columns["model"] = [model] * n
    return pa.table(columns, schema=CONCEPTS_SCHEMA)


@dataclass(frozen=True)
class ScoreJob:
    """What every scoring unit shares: the embedding folder, the concepts' text vectors and the scoring settings."""

    folder: Path
    text_vectors: np.ndarray
    taxonomy: Taxonomy
    top_k: int
    temperature: float
    model: str


def score_part(stem: str, job: ScoreJob) -> pa.Table:
    """The concepts rows of one embedding part (unit function of `exec.run_units`): memory of one shard, not the archive."""
    keys = pq.read_table(job.folder / f"{stem}.keys.parquet").column("key").to_pylist()
    vectors = np.load(job.folder / f"{stem}.image.npy", allow_pickle=False)
    return score_concepts(keys, vectors, job.text_vectors, job.taxonomy, job.top_k, job.temperature, job.model)


def zero_shot_labels(archive: Path, store: AnnotationStore, config: ZeroShotConfig) -> pa.Table:
    """Embed what is missing, score every image against the taxonomy, write concepts.parquet (under the annotations' lock).

    Scoring runs per embedding part (one unit per shard, on the embed config's executor); the parts'
    rows are sorted by key into one table, so every executor writes the same bytes.
    """
    from biomedica.curate.embed import embed_archive, load_encoder

    if parse_model_spec(config.embed.spec()).kind == "timm":  # refused before any model loads or image is embedded
        raise no_text_tower(config.embed.spec(), "curate zeroshot")
    taxonomy = load_taxonomy(config.taxonomy)
    embed = config.embed
    with annotations_lock(archive, store, "biomedica curate zeroshot"):
        encoder = load_encoder(embed)
        embed_archive(archive, store, embed, encoder=encoder)  # resumable: skips shards already embedded
        folder = store.embeddings_dir(embed.folder_name())
        stems = [part.stem for part in store.embedding_parts(embed.folder_name())]
        job = ScoreJob(folder, concept_text_embeddings(encoder, taxonomy), taxonomy, config.top_k, config.temperature,
                       embed.folder_name())
        local = embed.executor == "local" and embed.shard_workers <= 1
        parts = dict(run_units(score_part, stems, executor=embed.executor, workers=1 if local else embed.shard_workers,
                               context=job))
        table = pa.concat_tables([parts[stem] for stem in stems]).sort_by("key")  # a stable sort
        store.write("concepts", table)
    return table
