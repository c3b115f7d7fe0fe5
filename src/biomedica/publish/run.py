"""`publish`: lay the archive out (into `--to` or a staging folder), then upload it when `--to` is a hub repo."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from biomedica.publish.config import PublishConfig
from biomedica.publish.layout import MARKER_NAME, LayoutResult, PublishError, lay_out
from biomedica.publish.upload import HubToken, UploadResult, hub_token, upload


@dataclass
class PublishResult:
    target: str
    layout: LayoutResult
    token: HubToken | None
    uploaded: UploadResult | None
    seconds: float

    @property
    def bytes_per_second(self) -> float:
        return self.layout.bytes_total / self.seconds if self.seconds > 0 else 0.0


def run_publish(config: PublishConfig, *, progress: Callable[[int], None] | None = None,
                total: Callable[[int], None] | None = None) -> PublishResult:
    """Lay out, then (hub target, not a dry run) upload what was laid out; PublishError is a one-line refusal."""
    started = time.monotonic()
    target = config.target()
    token = None
    if target.is_hub:
        token = hub_token()
        if not token.value and not config.dry_run:  # refused before any file is written
            raise PublishError(f"no Hugging Face token to upload to {target.repo_id}: "
                               "set HF_TOKEN or run `hf auth login` (or publish --to ./FOLDER)")
    folder = config.staging_folder() if target.is_hub else Path(target.path)
    laid = lay_out(config, folder, progress=progress, total=total)
    uploaded = None
    if target.is_hub and not config.dry_run:
        files = sorted(f for f in laid.files if f != MARKER_NAME)
        uploaded = upload(folder, target.repo_id, files, token=token, private=config.private,
                          revision=config.revision)
    return PublishResult(str(target), laid, token, uploaded, time.monotonic() - started)
