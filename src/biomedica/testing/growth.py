"""Growing a dir-source corpus in tests: the article folders of a corpus, copied a slice at a time.

Why: growth tests (ingest appends, index adds units) build an input folder from some articles of
the demo corpus, ingest it, copy more articles in and ingest again, then compare with a clean
build of the union.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def article_folders(corpus: Path) -> list[Path]:
    """The article folders of a dir-source corpus (one per article, as the demo writes them), sorted."""
    return sorted(p for p in Path(corpus).iterdir() if p.is_dir())


def copy_articles(folders: list[Path], dest: Path) -> Path:
    """Copy article folders into `dest` (created if needed); returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        shutil.copytree(folder, dest / folder.name)
    return dest
