"""Database files made private (0600) without ever opening one that exists, and the one way
every store of ours opens its database (:func:`private_engine`).

Every store of ours keeps its SQLite file 0600: it holds people's jobs, identities and tokens'
metadata.  The tempting way — ``os.close(os.open(path, O_CREAT))`` on every start — is unsafe
for a file that exists: closing *any* descriptor of a file drops every POSIX lock this process
holds on it, SQLite's own included, so another connection of the same process loses its locks
and another process may then checkpoint, truncate or delete the write-ahead log under it (seen
here: the hub and a second ledger in one process each went on seeing only their own writes).
:func:`create_private` opens a file only to create it.

Any store may as well live in PostgreSQL (``postgresql+psycopg://…``; a plain
``postgresql://`` URL, JupyterHub's spelling, is read as psycopg 3, the driver we install).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, func, select
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url

__all__ = ["allocator_lock", "create_private", "create_tables", "private_engine", "sqlite_path"]

#: first key of our PostgreSQL advisory locks (the second names what is allocated)
LOCK_SPACE = 0x0C0417


def create_private(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and 0600 when it does not exist; else make it 0600 (``chmod``
    needs no descriptor).  Its folder must exist.  Returns the absolute path."""
    target = Path(path).absolute()
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        target.chmod(0o600)
    return target


def sqlite_path(url: str | URL) -> Path | None:
    """The absolute file of a SQLite URL; ``None`` for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).absolute()


def private_engine(url: str | URL, *, immediate: bool = False, timeout: float = 10.0) -> Engine:
    """An SQLAlchemy engine on ``url``, the database of one of our stores.

    SQLite: the file is created 0600 (its folder 0700 when new) before SQLAlchemy opens it;
    every connection is in WAL mode (the hub, the gateway and the services write while APIs
    read) and waits ``timeout`` seconds for another writer's lock.  PostgreSQL: a plain
    ``postgresql://`` URL uses psycopg 3.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``).
    immediate
        SQLite only: every transaction starts with ``BEGIN IMMEDIATE``, so an allocator that
        reads and then writes (identities, pool leases) runs alone across processes; SQLite's
        default deferred start would fail one of two such writers with "database is locked".
        A connection with the execution option ``sqlite_deferred=True`` only reads: its
        transactions start ``BEGIN`` and wait for no writer.
    timeout
        Seconds a SQLite connection waits for a lock.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private(path)  # never opens an existing file: that would drop SQLite's locks
    engine = create_engine(parsed)
    if engine.dialect.name != "sqlite":
        return engine

    def _connect(connection: Any, _record: Any) -> None:
        if immediate:
            connection.isolation_level = None  # the driver's own BEGIN off: ours below
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    event.listen(engine, "connect", _connect)
    if immediate:

        def _begin(conn: Connection) -> None:
            deferred = conn.get_execution_options().get("sqlite_deferred", False)
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        event.listen(engine, "begin", _begin)
    return engine


def allocator_lock(db: Connection, name: str) -> None:
    """Let one allocator of ``name`` at a time run its transaction: on PostgreSQL a transaction
    advisory lock (released at commit or rollback), the counterpart of SQLite's ``BEGIN
    IMMEDIATE`` from :func:`private_engine`; nothing on SQLite.  Allocators that read and then
    insert thus take turns instead of colliding on their unique keys and retrying."""
    if db.dialect.name != "postgresql":
        return
    key = zlib.crc32(name.encode()) - 2**31  # PostgreSQL's int4
    db.execute(select(func.pg_advisory_xact_lock(LOCK_SPACE, key)))


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Make ``metadata``'s missing tables, one process or thread at a time: two hub processes
    (or two threads' first sign-ins) starting on a new PostgreSQL database would otherwise both
    see a table missing and one fail with "relation already exists"."""
    with engine.begin() as db:
        allocator_lock(db, "create tables")
        metadata.create_all(db)
