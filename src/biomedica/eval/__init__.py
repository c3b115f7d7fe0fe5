"""Evaluation of CLIP-style models on biomedical benchmarks (`biomedica eval`).

Tasks are YAML data (tasks.py), datasets come through registered adapters (adapters/),
metrics are numpy functions (metrics.py); torch and open_clip are imported only by
models.py and embeddings.py, so importing this package stays torch-free.
"""
