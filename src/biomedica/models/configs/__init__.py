"""Model architectures shipped as OpenCLIP JSON configs, and the one way to register a config.

Every stage registers architectures here: the shipped ones (biomedica-tiny, behind
`tiny-random`) and a user's JSON (curate `--model-config`, train `model.config_file`),
whose file stem is the architecture name.
"""

from __future__ import annotations

from pathlib import Path

from biomedica.models.spec import MISSING_EXTRA, ModelFileNotFound, ModelLoadError

FOLDER = Path(__file__).resolve().parent


def register_model_config(path: Path) -> str:
    """Make an architecture JSON known to OpenCLIP (idempotent); returns its name, the file stem."""
    try:
        import open_clip
    except ImportError:
        raise ModelLoadError(MISSING_EXTRA) from None
    path = Path(path)
    if not path.is_file():
        raise ModelFileNotFound(f"{path}: no such model config file; give the JSON architecture's path")
    if path.stem not in open_clip.list_models():
        open_clip.add_model_config(path)
    return path.stem


def register_builtin_configs() -> list[str]:
    """Register every architecture shipped in this folder (idempotent)."""
    return [register_model_config(p) for p in sorted(FOLDER.glob("*.json"))]
