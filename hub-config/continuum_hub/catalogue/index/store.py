"""The built-in catalogue's records: one SQLite file, the source of truth.

Everything the built-in source knows lives here; the full-text index (:mod:`.fulltext`) is
rebuilt from it at any time, and the fallback search (:mod:`.fallback`) reads it directly.
Tables:

``entries``
    one row per entry (its ``rowid`` is the document key of the full-text index); the facet
    columns, the time range, JSON ``metadata`` and ``access``, and ``sites`` as ``|a|b|`` so
    a filter needs no join;
``replicas``
    the copies of an entry per site (``entry_id`` is the entry's ``rowid``);
``bbox``
    an R*Tree of sky/geo boxes (``metadata["bbox"] == [xmin, ymin, xmax, ymax]``);
``fts``
    an FTS5 table over title and the remaining words, used only by the fallback (with prefix
    indexes of 2-4 letters: without them a short prefix merges thousands of doclists);
``fingerprints``
    what a harvester last saw of each identifier (mtime, size), for incremental re-harvest.

The file is created 0600 and runs in WAL mode, so searches read while a harvest writes.  Each
thread gets its own connection; writes are serialised by one lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from continuum_spawners.private_file import create_private

from ..model import Entry, Replica
from .terms import epoch

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    rowid INTEGER PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    vo TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL DEFAULT 'public',
    format TEXT NOT NULL DEFAULT '',
    size INTEGER,
    time_start TEXT,
    time_end TEXT,
    sites TEXT NOT NULL DEFAULT '|',
    metadata TEXT NOT NULL DEFAULT '{}',
    access TEXT NOT NULL DEFAULT '{}',
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS replicas (
    entry_id INTEGER NOT NULL,
    site TEXT NOT NULL,
    location TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'available',
    size INTEGER
);
CREATE INDEX IF NOT EXISTS entries_updated ON entries(updated);
CREATE INDEX IF NOT EXISTS replicas_entry ON replicas(entry_id);
CREATE VIRTUAL TABLE IF NOT EXISTS bbox USING rtree(id, xmin, xmax, ymin, ymax);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, body, prefix='2 3 4');
CREATE TABLE IF NOT EXISTS fingerprints (
    identifier TEXT PRIMARY KEY,
    mtime REAL NOT NULL,
    size INTEGER NOT NULL
);
"""

#: entry columns read back (in this order) by :meth:`CatalogueStore.row_entry`
COLUMNS = (
    "rowid, identifier, id, source, kind, title, description, vo, visibility, format, size, "
    "time_start, time_end, sites, metadata, access"
)


def metadata_words(metadata: Mapping[str, Any], limit: int = 4096) -> str:
    """The words of an entry's metadata (keys and scalar values), for full-text search.

    Bounded by ``limit`` characters so a huge sidecar file cannot bloat the index.
    """
    parts: list[str] = []
    size = 0

    def walk(value: Any) -> None:
        nonlocal size
        if size > limit:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "bbox":
                    continue
                parts.append(str(key))
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value[:64]:
                walk(item)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            parts.append(text)
            size += len(text) + 1

    walk(metadata)
    return " ".join(parts)[:limit]


def entry_sites(entry: Entry) -> list[str]:
    """The sites of an entry: those it names and those holding a replica, in that order."""
    return list(dict.fromkeys([*entry.sites, *(r.site for r in entry.replicas if r.site)]))


def _bbox(metadata: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    box = metadata.get("bbox")
    if not isinstance(box, list | tuple) or len(box) != 4:
        return None
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in box)
    except (TypeError, ValueError):
        return None
    if xmin > xmax or ymin > ymax:
        return None
    return xmin, xmax, ymin, ymax


class CatalogueStore:
    """The SQLite store of the built-in catalogue (see the module docstring).

    Parameters
    ----------
    path
        The SQLite file; created (0600, with its folder) when missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # private before SQLite creates it: it may hold VO-private metadata
        create_private(self.path)
        self._local = threading.local()
        self._write = threading.Lock()
        #: called with (changed rowids, deleted rowids) after every committed write
        self.listeners: list[Any] = []
        with self._write:
            db = self.connection()
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the store."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            # time filters compare instants, not ISO strings of mixed forms
            db.create_function(
                "catalogue_epoch", 2, lambda s, end: epoch(s, end=bool(end)), deterministic=True
            )
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- writing ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (writers serialised; rolled back on any error)."""
        with self._write:
            db = self.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def upsert(
        self,
        entries: Iterable[Entry],
        fingerprints: Mapping[str, tuple[float, int]] | None = None,
    ) -> int:
        """Insert or replace entries (by identifier) and record harvest fingerprints.

        Returns the number of entries written.  One transaction for the whole batch.
        """
        changed: list[int] = []
        with self._transaction() as db:
            # taken inside the write lock: ``updated`` grows in commit order (see changed_since)
            now = time.time()
            for entry in entries:
                changed.append(self._put(db, entry, now))
            for identifier, (mtime, size) in (fingerprints or {}).items():
                db.execute(
                    "INSERT INTO fingerprints VALUES (?, ?, ?) ON CONFLICT(identifier) "
                    "DO UPDATE SET mtime = excluded.mtime, size = excluded.size",
                    (identifier, float(mtime), int(size)),
                )
        self._notify(changed, [])
        return len(changed)

    def _put(self, db: sqlite3.Connection, entry: Entry, now: float) -> int:
        sites = entry_sites(entry)
        values = (
            entry.id or f"{entry.source}:{entry.identifier}",
            entry.source,
            entry.kind,
            entry.title,
            entry.description,
            entry.vo,
            entry.visibility,
            entry.format,
            entry.size,
            entry.time_start,
            entry.time_end,
            "|" + "".join(f"{site}|" for site in sites),
            json.dumps(entry.metadata, default=str),
            json.dumps(entry.access),
            now,
        )
        row = db.execute(
            "INSERT INTO entries (identifier, id, source, kind, title, description, vo, "
            "visibility, format, size, time_start, time_end, sites, metadata, access, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(identifier) DO UPDATE SET id = excluded.id, source = excluded.source, "
            "kind = excluded.kind, title = excluded.title, description = excluded.description, "
            "vo = excluded.vo, visibility = excluded.visibility, format = excluded.format, "
            "size = excluded.size, time_start = excluded.time_start, "
            "time_end = excluded.time_end, sites = excluded.sites, "
            "metadata = excluded.metadata, access = excluded.access, updated = excluded.updated "
            "RETURNING rowid",
            (entry.identifier, *values),
        ).fetchone()
        rowid = int(row[0])
        db.execute("DELETE FROM replicas WHERE entry_id = ?", (rowid,))
        db.executemany(
            "INSERT INTO replicas VALUES (?, ?, ?, ?, ?, ?)",
            [(rowid, r.site, r.location, r.path, r.state, r.size) for r in entry.replicas],
        )
        db.execute("DELETE FROM bbox WHERE id = ?", (rowid,))
        box = _bbox(entry.metadata)
        if box is not None:
            db.execute("INSERT INTO bbox VALUES (?, ?, ?, ?, ?)", (rowid, *box))
        db.execute("DELETE FROM fts WHERE rowid = ?", (rowid,))
        db.execute(
            "INSERT INTO fts (rowid, title, body) VALUES (?, ?, ?)",
            (rowid, entry.title, f"{entry.description} {metadata_words(entry.metadata)}"),
        )
        return rowid

    def delete(self, identifiers: Iterable[str]) -> int:
        """Remove entries (and their replicas, box, text and fingerprint); returns how many."""
        gone: list[int] = []
        with self._transaction() as db:
            for identifier in identifiers:
                row = db.execute(
                    "DELETE FROM entries WHERE identifier = ? RETURNING rowid", (identifier,)
                ).fetchone()
                db.execute("DELETE FROM fingerprints WHERE identifier = ?", (identifier,))
                if row is None:
                    continue
                for table, key in (("replicas", "entry_id"), ("bbox", "id"), ("fts", "rowid")):
                    # names from the literal tuple above; the value is a parameter
                    db.execute(f"DELETE FROM {table} WHERE {key} = ?", (row[0],))  # noqa: S608
                gone.append(int(row[0]))
        self._notify([], gone)
        return len(gone)

    def _notify(self, changed: list[int], deleted: list[int]) -> None:
        if changed or deleted:
            for listener in list(self.listeners):
                listener(changed, deleted)

    # -- reading ------------------------------------------------------------------------------

    def fingerprints(self, prefix: str = "") -> dict[str, tuple[float, int]]:
        """Harvest fingerprints (identifier → (mtime, size)) of identifiers starting ``prefix``."""
        rows = self.connection().execute(
            "SELECT identifier, mtime, size FROM fingerprints WHERE substr(identifier, 1, ?) = ?",
            (len(prefix), prefix),
        )
        return {identifier: (mtime, size) for identifier, mtime, size in rows}

    def last_update(self) -> float:
        """When the newest write of any process happened (``updated`` of the newest row)."""
        row = self.connection().execute("SELECT max(updated) FROM entries").fetchone()
        return float(row[0] or 0.0)

    def changed_since(self, stamp: float) -> list[int]:
        """Row ids written (by any process) after ``stamp`` (a :meth:`last_update` value)."""
        rows = self.connection().execute("SELECT rowid FROM entries WHERE updated > ?", (stamp,))
        return [row[0] for row in rows]

    def count(self) -> int:
        """How many entries the store holds."""
        return int(self.connection().execute("SELECT count(*) FROM entries").fetchone()[0])

    def get(self, identifier: str) -> Entry | None:
        """The entry with this identifier (with its replicas), or ``None``."""
        row = (
            self.connection()
            .execute(f"SELECT {COLUMNS} FROM entries WHERE identifier = ?", (identifier,))  # noqa: S608
            .fetchone()
        )
        return None if row is None else self.entries_for([row])[0]

    def by_rowids(self, rowids: list[int]) -> list[Entry]:
        """Entries for full-text hits, in the order of ``rowids`` (missing ones skipped)."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = self.connection().execute(
            f"SELECT {COLUMNS} FROM entries WHERE rowid IN ({marks})",  # noqa: S608
            rowids,
        )
        by_id = {row[0]: row for row in rows}
        return self.entries_for([by_id[r] for r in rowids if r in by_id])

    def entries_for(self, rows: list[tuple]) -> list[Entry]:
        """Entries (with replicas) for rows of :data:`COLUMNS`."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        replicas: dict[int, list[Replica]] = {}
        sql = f"SELECT * FROM replicas WHERE entry_id IN ({marks}) ORDER BY rowid"  # noqa: S608
        for entry_id, site, location, path, state, size in self.connection().execute(
            sql, [row[0] for row in rows]
        ):
            replicas.setdefault(entry_id, []).append(Replica(site, location, path, state, size))
        return [self.row_entry(row, replicas.get(row[0], [])) for row in rows]

    @staticmethod
    def row_entry(row: tuple, replicas: list[Replica]) -> Entry:
        """One :class:`Entry` from a row of :data:`COLUMNS`."""
        (_, identifier, id_, source, kind, title, description, vo, visibility, format_) = row[:10]
        size, time_start, time_end, sites, metadata, access = row[10:]
        return Entry(
            id=id_,
            source=source,
            identifier=identifier,
            kind=kind,
            title=title,
            description=description,
            vo=vo,
            visibility=visibility,
            format=format_,
            size=size,
            time_start=time_start,
            time_end=time_end,
            sites=[s for s in sites.split("|") if s],
            replicas=replicas,
            metadata=json.loads(metadata),
            access=json.loads(access),
        )

    def documents(self, rowids: Iterable[int] | None = None, batch: int = 5000) -> Iterator[dict]:
        """What the full-text index needs of each entry (all entries, or those of ``rowids``).

        Reads through its own connection so a rebuild never holds the writers' lock.
        """
        sql = (
            "SELECT e.rowid, e.source, e.kind, e.title, e.vo, e.visibility, "
            "e.format, e.size, e.time_start, e.time_end, e.sites, f.body "
            "FROM entries e JOIN fts f ON f.rowid = e.rowid"
        )
        db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            if rowids is None:
                cursor = db.execute(sql + " ORDER BY e.rowid")
                while chunk := cursor.fetchmany(batch):
                    yield from (_document(row) for row in chunk)
                return
            wanted = list(rowids)
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                for row in db.execute(sql + f" WHERE e.rowid IN ({marks})", part):
                    yield _document(row)
        finally:
            db.close()

    def within(self, xmin: float, ymin: float, xmax: float, ymax: float) -> list[str]:
        """Identifiers whose bounding box overlaps the given box (through the R*Tree)."""
        rows = self.connection().execute(
            "SELECT e.identifier FROM bbox b JOIN entries e ON e.rowid = b.id "
            "WHERE b.xmax >= ? AND b.xmin <= ? AND b.ymax >= ? AND b.ymin <= ? ORDER BY e.rowid",
            (xmin, xmax, ymin, ymax),
        )
        return [row[0] for row in rows]


def _document(row: tuple) -> dict[str, Any]:
    rowid, source, kind, title, vo, visibility, format_, size = row[:8]
    time_start, time_end, sites, body = row[8:]
    return {
        "rowid": rowid,
        "source": source,
        "kind": kind,
        "title": title,
        "text": f"{title} {body}",
        "vo": vo,
        "visibility": visibility,
        "format": format_,
        "size": size,
        "time_start": time_start,
        "time_end": time_end,
        "sites": [s for s in sites.split("|") if s],
    }
