"""One database's copy for :mod:`continuum_hub.backup`: made while the hub runs, put back while
it is stopped.

SQLite
    :func:`dump_sqlite` copies through SQLite's online backup API
    (:meth:`sqlite3.Connection.backup`): a consistent snapshot even while the hub, the gateway
    and the services write (WAL), never a half-written file.  :func:`restore_sqlite` writes the
    copy back the same way into a file created 0600.
PostgreSQL
    :func:`dump_postgres` runs ``pg_dump --format=custom`` and :func:`restore_postgres`
    ``pg_restore --clean --if-exists`` on the database of a SQLAlchemy URL.  The password, if
    the URL has one, goes to libpq in a 0600 password file named by ``PGPASSFILE`` in a private
    temporary folder, never on the command line nor in the environment
    (:func:`libpq_command`).

Every file written is 0600.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from continuum_spawners.private_file import create_private, sqlite_path

__all__ = [
    "DumpError",
    "database_key",
    "dump_postgres",
    "dump_sqlite",
    "is_empty",
    "libpq_command",
    "restore_postgres",
    "restore_sqlite",
]

#: seconds a pg_dump or pg_restore may run
TIMEOUT = 3600.0
#: the first bytes of every SQLite database file
SQLITE_HEADER = b"SQLite format 3\x00"


class DumpError(RuntimeError):
    """A database could not be copied or put back (the message says which and why)."""


def database_key(url: str | URL) -> str:
    """What identifies the database of ``url`` (several stores may share one PostgreSQL
    database: it is dumped once): the SQLite file, else server, port and database name."""
    parsed = make_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        return f"sqlite:{path}"
    host = parsed.host or parsed.query.get("host") or ""
    return f"{parsed.get_backend_name()}://{host}:{parsed.port or 5432}/{parsed.database}"


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` is a SQLite database (by its header)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def dump_sqlite(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` into the new file ``target`` (0600), consistently."""
    create_private(target)
    # read-only: the backup never changes the live database, nor makes one where none was
    with closing(sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)) as live:
        with closing(sqlite3.connect(target)) as copy:
            live.backup(copy)


def restore_sqlite(copy: Path, target: Path) -> None:
    """Write the SQLite database ``copy`` over ``target`` (made 0600 in a 0700 folder if new).

    The stale write-ahead log and shared memory of the old database go first: SQLite would
    otherwise read the old database's last transactions back into the restored one.
    """
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    create_private(target)
    with closing(sqlite3.connect(f"{copy.absolute().as_uri()}?mode=ro", uri=True)) as saved:
        with closing(sqlite3.connect(target)) as live:
            saved.backup(live)


def _conninfo_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _passfile_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextmanager
def libpq_command(program: str, url: str | URL, *arguments: str) -> Iterator[tuple[list, dict]]:
    """``(argv, environment)`` to run a libpq ``program`` (``pg_dump``, ``pg_restore``,
    ``psql``) on the database of ``url``.

    The connection goes in ``--dbname`` as a libpq connection string *without* the password;
    a password goes into ``passfile`` (0600) in a private temporary folder, removed when the
    context ends, and ``PGPASSFILE`` names it.  ``PGPASSWORD`` from the caller's environment is
    dropped: the URL is the one source of credentials.
    """
    parsed = make_url(url)
    settings = {key: str(value) for key, value in parsed.query.items()}
    settings.update(
        {
            key: str(value)
            for key, value in (
                ("host", parsed.host),
                ("port", parsed.port),
                ("user", parsed.username),
                ("dbname", parsed.database),
            )
            if value
        }
    )
    conninfo = " ".join(f"{key}={_conninfo_value(value)}" for key, value in settings.items())
    environment = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    with tempfile.TemporaryDirectory(prefix="continuum-pg-") as folder:  # 0700
        if parsed.password is not None:
            passfile = create_private(Path(folder) / "passfile")
            user = _passfile_field(parsed.username or "*")
            passfile.write_text(f"*:*:*:{user}:{_passfile_field(str(parsed.password))}\n")
            environment["PGPASSFILE"] = str(passfile)
        yield [program, f"--dbname={conninfo}", *arguments], environment


def _run(argv: list[str], environment: dict[str, str], what: str) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(
            argv,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DumpError(f"{what}: {exc}") from None
    if result.returncode != 0:
        raise DumpError(f"{what} failed (status {result.returncode}): {result.stderr.strip()}")
    return result


def _program(name: str, folder: str | None) -> str:
    found = shutil.which(name, path=folder) if folder else shutil.which(name)
    if not found:
        where = folder or "PATH"
        raise DumpError(f"{name} not found in {where} (Debian: apt-get install postgresql-client)")
    return found


def dump_postgres(url: str | URL, target: Path, bin_dir: str | None = None) -> None:
    """``pg_dump --format=custom`` of the database of ``url`` into the new file ``target``
    (0600).  ``pg_dump`` runs in one snapshot: consistent while the hub writes."""
    create_private(target)
    program = _program("pg_dump", bin_dir)
    options = ("--format=custom", "--no-owner", "--no-acl", f"--file={target}")
    with libpq_command(program, url, *options) as (argv, environment):
        _run(argv, environment, f"pg_dump of {make_url(url).database}")


def is_empty(url: str | URL, bin_dir: str | None = None) -> bool:
    """Whether the PostgreSQL database of ``url`` has no table of its own (outside the system
    schemas): what a restore may fill without ``--force``."""
    program = _program("psql", bin_dir)
    query = (
        "SELECT count(*) FROM pg_catalog.pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    with libpq_command(program, url, "-XAtq", "-c", query) as (argv, environment):
        result = _run(argv, environment, f"psql on {make_url(url).database}")
    return result.stdout.strip() == "0"


def restore_postgres(dump: Path, url: str | URL, bin_dir: str | None = None) -> None:
    """``pg_restore`` of ``dump`` into the (existing) database of ``url``, in one transaction;
    objects of the dump that exist there are dropped first."""
    program = _program("pg_restore", bin_dir)
    options = ("--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction")
    with libpq_command(program, url, *options, str(dump)) as (argv, environment):
        _run(argv, environment, f"pg_restore into {make_url(url).database}")
