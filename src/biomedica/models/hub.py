"""Hub downloads when loading a model: decide in seconds whether the Hugging Face Hub is there.

huggingface_hub retries a refused connection for half a minute per file (and logs every try),
so offline an `hf-hub:` id took 20-50 s to fail. One TCP probe of the endpoint decides instead:
reachable, load as usual; unreachable (or HF_HUB_OFFLINE set), load from the local cache only,
and refuse at once, in one line, a hub model that is not in the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from biomedica.models.spec import ModelLoadError, ModelSpec
from biomedica.net.probe import host_of, unreachable

HUB_PROBE_TIMEOUT = 3.0  # seconds a TCP connect to the Hub may take before it counts as unreachable
HUB_CONFIG = "open_clip_config.json"  # every OpenCLIP hub model has one; its presence means "cached"


def may_download(spec: ModelSpec) -> bool:
    """Whether loading `spec` may fetch weights: hub ids, pretrained tags and timm's own weights."""
    if spec.is_hub:
        return True
    return spec.pretrained is None if spec.kind == "timm" else not (spec.is_random or spec.is_path)


def offline_reason(spec: ModelSpec) -> str | None:
    """None when loading `spec` may use the Hub (reachable, or not needed); else why it may not.

    Imports no torch, so an `hf-hub:` model missing from the cache while offline is refused
    (ModelLoadError, one line) within seconds.
    """
    if not may_download(spec):
        return None
    try:
        from huggingface_hub import constants
    except ImportError:  # open_clip then fetches nothing from the Hub either
        return None
    if constants.HF_HUB_OFFLINE:
        reason = "HF_HUB_OFFLINE is set"
    else:
        why = unreachable(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT)
        if why is None:
            return None
        reason = f"the Hugging Face Hub at {host_of(constants.ENDPOINT)} is unreachable ({why})"
    _require_cached(spec, reason)
    return reason


@contextmanager
def cache_only(reason: str | None) -> Iterator[None]:
    """With a reason (see offline_reason): huggingface_hub reads its local cache only, with no retries."""
    if reason is None:
        yield
        return
    from huggingface_hub import constants

    was = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True  # read per request by huggingface_hub
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = was


def _require_cached(spec: ModelSpec, reason: str) -> None:
    if not spec.is_hub:
        return
    from huggingface_hub import constants, try_to_load_from_cache

    repo = spec.arch.removeprefix("hf-hub:").strip("/")
    if isinstance(try_to_load_from_cache(repo, HUB_CONFIG), str):
        return
    raise ModelLoadError(
        f"model {spec.text!r} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {reason}; "
        f"download it where the Hub is reachable (`hf download {repo}`) and copy the cache, or pass ARCH:/path/to/weights"
    )
