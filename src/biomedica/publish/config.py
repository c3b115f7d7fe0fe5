"""Typed settings of `biomedica publish`, and the one rule that tells a folder from a hub repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from biomedica.records import LICENSE_GROUPS

DEFAULT_GROUPS = ("commercial", "noncommercial")  # `other` (unknown licences) only when asked for by name
HF_PREFIX = "hf://datasets/"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class PublishTarget:
    """Where `--to` points: a local folder (`path`) or a hub dataset repository (`repo_id`)."""

    path: Path | None = None
    repo_id: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.repo_id is not None

    def __str__(self) -> str:
        return f"{HF_PREFIX}{self.repo_id}" if self.repo_id else str(self.path)


def parse_target(to: str) -> PublishTarget:
    """`hf://datasets/ORG/NAME`, or a bare `ORG/NAME` that is not an existing path, is a hub repository;
    anything else (`/abs`, `./rel`, `~/x`, `a/b/c`, a name without `/`, an existing path) is a folder.

    So a new local folder of the form `out/pub` is written `./out/pub`; `ORG/NAME` never means a folder
    that does not exist yet, and an existing folder is never mistaken for a repository.
    """
    text = to.strip()
    if text.startswith(HF_PREFIX):
        repo_id = text[len(HF_PREFIX):].strip("/")
        if not _REPO_ID.match(repo_id):
            raise ValueError(f"--to {to!r}: expected hf://datasets/ORG/NAME")
        return PublishTarget(repo_id=repo_id)
    if text.startswith("hf://"):
        raise ValueError(f"--to {to!r}: only dataset repositories are published: hf://datasets/ORG/NAME")
    if _REPO_ID.match(text) and not Path(text).exists():
        return PublishTarget(repo_id=text)
    return PublishTarget(path=Path(text).expanduser())


class PublishConfig(BaseModel):
    """Which archive, which parts of it (licence groups, annotations, embeddings), and where it goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: Path
    to: str = Field(description="a folder, or a hub dataset repository ORG/NAME (hf://datasets/ORG/NAME)")
    license_groups: tuple[str, ...] | None = Field(
        default=None, description="licence groups to publish (default: commercial and noncommercial, those present)"
    )
    annotations: bool = Field(default=True, description="publish the annotation tables as configs annotations-<table>")
    annotations_dir: Path | None = Field(default=None, description="annotation folder (default <archive>/annotations)")
    embeddings: tuple[str, ...] = Field(default=(), description="embedding folders to publish as configs embeddings-<name>")
    private: bool = Field(default=False, description="create the hub repository private")
    revision: str | None = Field(default=None, description="hub branch to commit to (created when missing)")
    staging: Path | None = Field(default=None, description="folder laid out before an upload (default beside the archive)")
    dry_run: bool = Field(default=False, description="say what would be written or uploaded; write nothing")

    @field_validator("license_groups")
    @classmethod
    def _known_groups(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = [g for g in value if g not in LICENSE_GROUPS]
        if unknown or not value:
            raise ValueError(f"unknown licence group {', '.join(unknown) or '(none)'}; use {', '.join(LICENSE_GROUPS)}")
        return tuple(dict.fromkeys(value))

    @field_validator("embeddings")
    @classmethod
    def _plain_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in value if not _NAME.match(n)]
        if bad:
            raise ValueError(f"embedding name {bad[0]!r} is not a folder name under annotations/embeddings/")
        return tuple(dict.fromkeys(value))

    @field_validator("to")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_target(value)
        return value

    def target(self) -> PublishTarget:
        return parse_target(self.to)

    def annotations_folder(self) -> Path:
        return Path(self.annotations_dir) if self.annotations_dir else Path(self.archive) / "annotations"

    def staging_folder(self) -> Path:
        """The folder an upload is laid out in first: beside the archive, so shards hard-link instead of copying."""
        if self.staging:
            return Path(self.staging)
        repo = (self.target().repo_id or "folder").replace("/", "--")
        archive = Path(self.archive).resolve()
        return archive.parent / f"{archive.name}.publish-{repo}"
