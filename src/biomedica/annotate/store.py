"""Durable label storage in SQLite: every submitted label is one committed row, never lost on a crash.

WAL journal with synchronous=FULL: a label is on disk when the HTTP request returns.
Rows are never updated: a new submission by the same annotator for the same cluster is a
new row, and the latest one counts (so the history of changes is kept for audit).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

STATUSES = ("labelled", "ambiguous", "split")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    annotator TEXT NOT NULL,
    cluster INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('labelled', 'ambiguous', 'split')),
    panel_type TEXT,
    global_concepts TEXT NOT NULL,  -- JSON list of ids
    local_concepts TEXT NOT NULL,   -- JSON list of ids
    note TEXT,
    taxonomy TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_by_cluster ON labels (cluster, annotator, id);
"""


@dataclass
class ClusterLabel:
    """One annotator's label of one cluster."""

    annotator: str
    cluster: int
    status: str
    panel_type: str | None = None
    global_concepts: list[str] = field(default_factory=list)
    local_concepts: list[str] = field(default_factory=list)
    note: str | None = None
    taxonomy: str | None = None
    created_at: str | None = None


class LabelStore:
    """The SQLite file of an annotation project; safe to share between the server's threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def add(self, label: ClusterLabel) -> int:
        """Store one label (committed before returning); returns its row id."""
        if label.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {label.status!r}")
        if not label.annotator.strip():
            raise ValueError("annotator name is empty: type your name before labelling")
        created = label.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO labels (annotator, cluster, status, panel_type, global_concepts, local_concepts, note, "
                "taxonomy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (label.annotator.strip(), int(label.cluster), label.status, label.panel_type,
                 json.dumps(label.global_concepts), json.dumps(label.local_concepts), label.note, label.taxonomy, created),
            )
            return int(cursor.lastrowid)

    def latest(self) -> list[ClusterLabel]:
        """The latest label of each (annotator, cluster), ordered by cluster then annotator."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT annotator, cluster, status, panel_type, global_concepts, local_concepts, note, taxonomy, created_at "
                "FROM labels WHERE id IN (SELECT max(id) FROM labels GROUP BY annotator, cluster) "
                "ORDER BY cluster, annotator"
            ).fetchall()
        return [
            ClusterLabel(a, c, s, p, json.loads(g), json.loads(loc), n, t, at) for a, c, s, p, g, loc, n, t, at in rows
        ]

    def history_size(self) -> int:
        with self._lock:
            return int(self._connection.execute("SELECT count(*) FROM labels").fetchone()[0])

    def labelled_by(self, annotator: str) -> set[int]:
        with self._lock:
            rows = self._connection.execute("SELECT DISTINCT cluster FROM labels WHERE annotator = ?", (annotator.strip(),))
            return {int(r[0]) for r in rows}
