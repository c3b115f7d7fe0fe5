"""Which exact weights produced a result: the `--model` spec and a record of its weights.

A result must name its weights so that two runs are never confused: a checkpoint of the
shipped tiny architecture (`biomedica-tiny:/x/epoch_3.pt`) is not the random baseline
(`tiny-random`), and two checkpoints at the same path are told apart by their sha256.
Records, by kind of spec (models.spec):

    ARCH:/path/weights.pt    {"path": absolute path, "sha256": ..., "bytes": ...}
    ARCH:TAG                 {"tag": TAG}
    tiny-random[@S], ARCH:random[@S]   {"random_seed": S}
    hf-hub:ORG/NAME          {"hub": ORG/NAME, "revision", "file", "sha256"} (from the local HF cache when present)

A file is hashed once per process: the digest is cached by (path, size, mtime).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from biomedica.models.spec import ModelLoadError, parse_model_spec

HUB_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a file, computed once per (path, size, mtime) in this process."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def model_spec_text(model) -> str:
    """The spec a loaded model was built from (load_model names a model by its spec; tiny-random canonical)."""
    return str(getattr(model, "spec", None) or model.name)


def _hub_record(repo: str) -> dict:
    record: dict = {"hub": repo}
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return record
    for name in HUB_WEIGHT_FILES:
        try:
            cached = try_to_load_from_cache(repo, name)
        except Exception:  # noqa: BLE001 - a malformed repo id or cache means "not cached"
            return record
        if isinstance(cached, str) and Path(cached).is_file():
            record.update(revision=Path(cached).parent.name, file=name, sha256=sha256_file(Path(cached)))
            break
    return record


def weights_record(spec_text: str) -> dict:
    """What the weights of `spec_text` are (module docstring); {"unknown": ...} for a model object without a spec."""
    try:
        spec = parse_model_spec(spec_text)
    except ModelLoadError:
        return {"unknown": f"{spec_text!r} is not a model spec (a model object passed in); see model.fingerprint"}
    if spec.is_random:
        return {"random_seed": spec.seed}
    if spec.is_hub:
        return _hub_record(spec.arch.removeprefix("hf-hub:"))
    if spec.is_path:
        path = spec.path.resolve()
        if not path.is_file():
            return {"path": str(path), "sha256": None}
        return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
    if spec.pretrained is None:  # timm's own weights
        return {"tag": f"timm default weights of {spec.arch}"}
    return {"tag": spec.pretrained}


def model_record(model) -> dict:
    """The result's `model` entry: display name, exact spec, weights, fingerprint, device, precision."""
    spec = model_spec_text(model)
    return {
        "name": model.name,
        "spec": spec,
        "architecture": _architecture(spec),
        "weights": weights_record(spec),
        "fingerprint": model.fingerprint,
        "device": getattr(model, "device", None),
        "precision": getattr(model, "precision", None),
    }


def _architecture(spec_text: str) -> str | None:
    try:
        return parse_model_spec(spec_text).arch
    except ModelLoadError:
        return None

