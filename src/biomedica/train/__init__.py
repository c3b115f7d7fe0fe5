"""Streaming continual pre-training of CLIP models on archive shards, through OpenCLIP's trainer.

One YAML config (`biomedica.train.config`) is resolved into shard URLs with exact sample
counts (`sources`), mapped onto `open_clip_train.main` flags (`openclip_args`) and run in
OpenCLIP's own loop (`run`), with per-step metrics and an eval hook around it (`monitor`).
Shards stream from local paths, https (token from an env var), hf:// and s3:// through
`fetch`; `checkpoints` holds WiSE-FT and export. Importing this package does not import
torch; the modules that need it import it themselves. Nothing is imported eagerly, so the
shard helper `python -m biomedica.net.stream` starts with the standard library only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "TrainConfig", "load_config", "parse_config", "run_training"]


def __getattr__(name: str) -> Any:
    if name in ("ConfigError", "TrainConfig", "load_config", "parse_config"):
        from biomedica.train import config

        return getattr(config, name)
    if name == "run_training":
        from biomedica.train.run import run_training

        return run_training
    raise AttributeError(name)
