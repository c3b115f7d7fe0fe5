"""The `publish` stage: lays an archive out as a Hugging Face dataset repository and uploads it.

`layout` writes the folder (shards, Parquet indexes, annotations, embeddings as Parquet, the
dataset card from `archive.card`), `upload` pushes it with huggingface_hub, `run` does both.
"""
