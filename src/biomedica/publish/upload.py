"""Upload a laid-out folder to a hub dataset repository with huggingface_hub (resumable, never prints the token).

The token comes only from where huggingface_hub looks (HF_TOKEN, then its login cache); the endpoint
from HF_ENDPOINT, read at call time. `HfApi.upload_folder` (huggingface_hub >= 1.x) streams the
files in several commits and, rerun after an interruption, skips what the hub already holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from biomedica.publish.layout import PublishError


@dataclass(frozen=True)
class HubToken:
    value: str | None
    source: str  # "HF_TOKEN", "the huggingface_hub login cache", or "none": what the summary says

    def __repr__(self) -> str:  # never the value
        return f"HubToken(source={self.source!r})"


@dataclass(frozen=True)
class UploadResult:
    repo_url: str
    commit_url: str | None
    files: int
    revision: str


def hub_token() -> HubToken:
    """The token huggingface_hub would use, and where it came from."""
    from huggingface_hub import get_token

    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return HubToken(get_token(), "HF_TOKEN")
    token = get_token()
    return HubToken(token, "the huggingface_hub login cache" if token else "none")


def upload_patterns(folder: Path, files: list[str]) -> list[str]:
    """`files` (relative, '/'-separated) as `allow_patterns` for upload_folder: `DIR/*` for a folder holding
    exactly listed files and no subfolder, else the names one by one.

    huggingface_hub matches every file against every pattern, so one pattern per file costs
    files x files matches (about 10^8 for a full PMC archive) before the first byte is sent.
    """
    by_dir: dict[str, set[str]] = {}
    for rel in files:
        by_dir.setdefault(rel.rpartition("/")[0], set()).add(rel)
    patterns: list[str] = []
    for directory, listed in sorted(by_dir.items()):
        entries = list((Path(folder) / directory).iterdir()) if directory else []
        whole = bool(entries) and not any(c in directory for c in "*?[") and all(e.is_file() for e in entries) \
            and {f"{directory}/{e.name}" for e in entries} == listed
        patterns += [f"{directory}/*"] if whole else sorted(listed)
    return patterns


def upload(folder: Path, repo_id: str, files: list[str], *, token: HubToken, private: bool = False,
           revision: str | None = None) -> UploadResult:
    """Create the dataset repository if needed (and branch `revision`), then upload `files` of `folder`."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not token.value:
        raise PublishError(f"no Hugging Face token to upload to {repo_id}: set HF_TOKEN or run `hf auth login`")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token.value)
    branch = revision or "main"
    try:
        repo = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="dataset", revision=branch, allow_patterns=upload_patterns(folder, files),
            commit_message=f"biomedica publish: {len(files)} files",
        )
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", "?") if getattr(exc, "response", None) is not None else "?"
        raise PublishError(f"upload to {repo_id} failed (HTTP {status}: {str(exc).splitlines()[0]}); "
                           "check the token's write access and rerun: files already uploaded are skipped") from None
    except OSError as exc:  # connection refused, DNS, timeouts
        raise PublishError(f"upload to {repo_id} failed ({type(exc).__name__}: {exc}); "
                           "check the network or HF_ENDPOINT and rerun: files already uploaded are skipped") from None
    return UploadResult(repo_url=str(repo), commit_url=getattr(commit, "commit_url", None), files=len(files),
                        revision=branch)
