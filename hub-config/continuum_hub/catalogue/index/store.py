"""The built-in catalogue's records: one database, the source of truth.

Everything the built-in source knows lives here; the full-text index (:mod:`.fulltext`) is
rebuilt from it at any time, and the fallback search (:mod:`.fallback`) reads it directly.
The database is any SQLAlchemy URL through
:func:`~continuum_spawners.private_file.private_engine`: a SQLite file (created 0600, WAL mode,
so searches read while a harvest writes) or PostgreSQL (:mod:`.schema` says how each holds
the tables).  Tables:

``entries``
    one row per entry (its ``rowid`` is the document key of the full-text index); the facet
    columns, the time range, JSON ``metadata`` and ``access``, and ``sites`` as ``|a|b|`` so
    a filter needs no join;
``replicas``
    the copies of an entry per site (``entry_id`` is the entry's ``rowid``);
``bbox``
    sky/geo boxes (``metadata["bbox"] == [xmin, ymin, xmax, ymax]``; an R*Tree on SQLite);
``fts``
    the title and the remaining words, used only by the fallback (FTS5 with prefix indexes of
    2-4 letters on SQLite, a weighted ``tsvector`` on PostgreSQL);
``fingerprints``
    what a harvester last saw of each identifier (mtime, size), for incremental re-harvest.

The SQL is written once with ``?`` marks and ``{table}`` names (:meth:`CatalogueStore.sql`);
writes of one store are serialised by one lock, and across processes (another process's
harvest waits its turn) by SQLite's ``BEGIN IMMEDIATE`` or a PostgreSQL advisory lock.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from continuum_spawners.private_file import allocator_lock, private_engine, sqlite_path

from ..model import Entry, Replica
from .schema import bbox_row, metadata_words, schema, table_names, table_prefix
from .terms import epoch

#: entry columns read back (in this order) by :meth:`CatalogueStore.row_entry`
COLUMNS = (
    "rowid, identifier, id, source, kind, title, description, vo, visibility, format, size, "
    "time_start, time_end, sites, metadata, access"
)


def entry_sites(entry: Entry) -> list[str]:
    """The sites of an entry: those it names and those holding a replica, in that order."""
    return list(dict.fromkeys([*entry.sites, *(r.site for r in entry.replicas if r.site)]))


class CatalogueStore:
    """The store of the built-in catalogue (see the module docstring).

    Parameters
    ----------
    target
        A SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``) or the path of a SQLite
        file; a SQLite file is created (0600, with its folder) when missing.
    source
        The built-in source's name: on PostgreSQL its tables are ``catalogue_<source>_…``.
    """

    def __init__(self, target: str | os.PathLike[str], source: str = "builtin") -> None:
        text = os.fspath(target)
        self.url = text if "://" in text else f"sqlite:///{os.path.abspath(text)}"
        # private before SQLite creates it: it may hold VO-private metadata
        self.engine = private_engine(self.url, immediate=True)
        self.dialect = self.engine.dialect.name
        self.path = sqlite_path(self.url)  # the SQLite file (None on another database)
        self.tables = table_names(prefix := table_prefix(self.dialect, source), self.dialect)
        if self.dialect == "sqlite":  # its catalogue_epoch: see _sqlite_connection
            event.listen(self.engine, "connect", _sqlite_connection)
        self._write = threading.Lock()
        self._sql: dict[str, str] = {}  # the SQL for this database, by its text
        #: called with (changed rowids, deleted rowids) after every committed write
        self.listeners: list[Any] = []
        with self._write, self.engine.begin() as db:
            allocator_lock(db, "catalogue tables")  # two services starting on one database
            for statement in schema(self.dialect, prefix):
                db.exec_driver_sql(statement)

    def sql(self, text: str) -> str:
        """``text`` for this database: table names filled in, ``?`` marks in the driver's style."""
        done = self._sql.get(text)
        if done is None:
            if len(self._sql) > 2000:  # searches' IN lists vary: bounded, not a leak
                self._sql.clear()
            done = text.format(**self.tables)
            done = self._sql[text] = done if self.dialect == "sqlite" else done.replace("?", "%s")
        return done

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        """The rows of a read (``?`` marks, ``{table}`` names), on a pooled connection of its
        own; through the driver's cursor (SQLite: no transaction), as a search runs many."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(self.sql(text), tuple(params))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            raw.close()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        # a read waits for no writer (SQLite: a deferred BEGIN, not the writers' IMMEDIATE)
        with self.engine.connect().execution_options(sqlite_deferred=True) as db:
            yield db

    def close(self) -> None:
        """Close the store's idle connections (a later call opens new ones)."""
        self.engine.dispose()

    # -- writing ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One write transaction (writers serialised; rolled back on any error); yields a
        function running one statement (``?`` marks) and returning its result."""
        with self._write, self.engine.begin() as db:
            # PostgreSQL: one writer of these tables at a time across processes (SQLite's
            # BEGIN IMMEDIATE), so ``updated`` grows in commit order there too
            allocator_lock(db, "catalogue writes " + self.tables["entries"])
            cursor = db.connection.cursor()  # the driver's own: a harvest runs many statements

            def run(text: str, params: Sequence[Any] = ()) -> Any:
                cursor.execute(self.sql(text), tuple(params))
                return cursor

            yield run

    def upsert(
        self,
        entries: Iterable[Entry],
        fingerprints: Mapping[str, tuple[float, int]] | None = None,
    ) -> int:
        """Insert or replace entries (by identifier) and record harvest fingerprints.

        Returns the number of entries written.  One transaction for the whole batch.
        """
        changed: list[int] = []
        with self._transaction() as run:
            # taken inside the write lock: ``updated`` grows in commit order (see changed_since)
            now = time.time()
            for entry in entries:
                changed.append(self._put(run, entry, now))
            for identifier, (mtime, size) in (fingerprints or {}).items():
                run(
                    "INSERT INTO {fingerprints} VALUES (?, ?, ?) ON CONFLICT(identifier) "
                    "DO UPDATE SET mtime = excluded.mtime, size = excluded.size",
                    (identifier, float(mtime), int(size)),
                )
        self._notify(changed, [])
        return len(changed)

    def _put(self, run: Any, entry: Entry, now: float) -> int:
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
        row = run(
            "INSERT INTO {entries} (identifier, id, source, kind, title, description, vo, "
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
        run("DELETE FROM {replicas} WHERE entry_id = ?", (rowid,))
        for r in entry.replicas:  # in order: SQLite's rowid or PostgreSQL's seq keeps it
            run(
                "INSERT INTO {replicas} (entry_id, site, location, path, state, size) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rowid, r.site, r.location, r.path, r.state, r.size),
            )
        run("DELETE FROM {bbox} WHERE id = ?", (rowid,))
        box = bbox_row(entry.metadata)
        if box is not None:
            run("INSERT INTO {bbox} VALUES (?, ?, ?, ?, ?)", (rowid, *box))
        run("DELETE FROM {fts} WHERE rowid = ?", (rowid,))
        run(
            "INSERT INTO {fts} (rowid, title, body) VALUES (?, ?, ?)",
            (rowid, entry.title, f"{entry.description} {metadata_words(entry.metadata)}"),
        )
        return rowid

    def delete(self, identifiers: Iterable[str]) -> int:
        """Remove entries (and their replicas, box, text and fingerprint); returns how many."""
        gone: list[int] = []
        with self._transaction() as run:
            for identifier in identifiers:
                row = run(
                    "DELETE FROM {entries} WHERE identifier = ? RETURNING rowid", (identifier,)
                ).fetchone()
                run("DELETE FROM {fingerprints} WHERE identifier = ?", (identifier,))
                if row is None:
                    continue
                for table, key in (("replicas", "entry_id"), ("bbox", "id"), ("fts", "rowid")):
                    # names from the literal tuple above; the value is a parameter
                    run(f"DELETE FROM {{{table}}} WHERE {key} = ?", (row[0],))  # noqa: S608
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
        rows = self.query(
            "SELECT identifier, mtime, size FROM {fingerprints} WHERE substr(identifier, 1, ?) = ?",
            (len(prefix), prefix),
        )
        return {identifier: (float(mtime), int(size)) for identifier, mtime, size in rows}

    def last_update(self) -> float:
        """When the newest write of any process happened (``updated`` of the newest row)."""
        return float(self.query("SELECT max(updated) FROM {entries}")[0][0] or 0.0)

    def changed_since(self, stamp: float) -> list[int]:
        """Row ids written (by any process) after ``stamp`` (a :meth:`last_update` value)."""
        rows = self.query("SELECT rowid FROM {entries} WHERE updated > ?", (stamp,))
        return [int(row[0]) for row in rows]

    def count(self) -> int:
        """How many entries the store holds."""
        return int(self.query("SELECT count(*) FROM {entries}")[0][0])

    def get(self, identifier: str) -> Entry | None:
        """The entry with this identifier (with its replicas), or ``None``."""
        sql = f"SELECT {COLUMNS} FROM {{entries}} WHERE identifier = ?"  # noqa: S608
        rows = self.query(sql, (identifier,))
        return self.entries_for(rows)[0] if rows else None

    def by_rowids(self, rowids: list[int]) -> list[Entry]:
        """Entries for full-text hits, in the order of ``rowids`` (missing ones skipped)."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        sql = f"SELECT {COLUMNS} FROM {{entries}} WHERE rowid IN ({marks})"  # noqa: S608
        rows = self.query(sql, rowids)
        by_id = {row[0]: row for row in rows}
        return self.entries_for([by_id[r] for r in rowids if r in by_id])

    def entries_for(self, rows: list[tuple]) -> list[Entry]:
        """Entries (with replicas) for rows of :data:`COLUMNS`."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        order = "rowid" if self.dialect == "sqlite" else "seq"  # the order they were written
        replicas: dict[int, list[Replica]] = {}
        columns = "entry_id, site, location, path, state, size"
        sql = f"SELECT {columns} FROM {{replicas}} WHERE entry_id IN ({marks}) ORDER BY {order}"  # noqa: S608
        for entry_id, site, location, path, state, size in self.query(sql, [r[0] for r in rows]):
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
        """What the full-text index needs of each entry (all entries, or those of ``rowids``),
        read through a connection of its own: a rebuild never holds the writers' lock."""
        sql = (
            "SELECT e.rowid, e.source, e.kind, e.title, e.vo, e.visibility, "
            "e.format, e.size, e.time_start, e.time_end, e.sites, f.body "
            "FROM {entries} e JOIN {fts} f ON f.rowid = e.rowid"
        )
        with self._reading() as db:
            if rowids is None:
                every = self.sql(sql + " ORDER BY e.rowid")
                yield from map(
                    _document, db.execution_options(yield_per=batch).exec_driver_sql(every)
                )
                return
            wanted = list(rowids)
            for start in range(0, len(wanted), 500):
                part = tuple(wanted[start : start + 500])
                some = self.sql(sql + f" WHERE e.rowid IN ({','.join('?' * len(part))})")
                yield from map(_document, db.exec_driver_sql(some, part))

    def within(self, xmin: float, ymin: float, xmax: float, ymax: float) -> list[str]:
        """Identifiers whose bounding box overlaps the given box."""
        rows = self.query(
            "SELECT e.identifier FROM {bbox} b JOIN {entries} e ON e.rowid = b.id "
            "WHERE b.{xmax} >= ? AND b.{xmin} <= ? AND b.{ymax} >= ? AND b.{ymin} <= ? "
            "ORDER BY e.rowid",
            (xmin, xmax, ymin, ymax),
        )
        return [row[0] for row in rows]


def _sqlite_connection(connection: Any, _record: Any) -> None:
    # a harvest's many small commits: WAL makes NORMAL safe against corruption
    connection.execute("PRAGMA synchronous=NORMAL")
    # time filters compare instants, not ISO strings of mixed forms
    connection.create_function(
        "catalogue_epoch", 2, lambda s, end: epoch(s, end=bool(end)), deterministic=True
    )


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
