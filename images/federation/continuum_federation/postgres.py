"""A throwaway PostgreSQL cluster (Debian's 15) for the tests and the demo.

``initdb`` runs as the ``postgres`` account in a folder of its own; the server listens on
127.0.0.1 and a private socket folder (never the machine's own cluster or /var/run/postgresql),
with ``trust`` authentication: it is reachable from this machine only and lives as long as its
caller.  Users: the stores' tests (``tests/fixtures/databases.py``: every store on PostgreSQL,
backup and restore), the TAP server (:mod:`.dachs`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .process import ProcessError, Service, free_port, log_tail

BIN = Path("/usr/lib/postgresql/15/bin")
#: the cluster's superuser (``trust``: no password)
SUPERUSER = "postgres"


@dataclass
class PostgresCluster(Service):
    """Start and stop a private PostgreSQL cluster.

    Parameters
    ----------
    folder
        Where the cluster lives (created, owned by ``postgres``); a new temporary folder when
        ``None``, removed again by :meth:`stop`.
    port
        TCP port on 127.0.0.1; a free one when ``None``.
    durable
        ``False``: no ``fsync`` and no synchronous commits (a test cluster that many tests
        create databases in; its data need not survive a crash of the machine), and room for
        300 connections.
    """

    folder: Path | None = None
    port: int | None = None
    durable: bool = True
    _own_folder: bool = False

    def _run(self, *argv: str) -> None:
        """Run a PostgreSQL program as its account, output to ``commands.log``.

        ``pg_ctl`` leaves the server holding its output open, so nothing here waits on a pipe;
        the server writes its own log (``postgres.log``, owned by its account).
        """
        assert self.folder is not None
        commands = self.folder / "commands.log"
        with open(commands, "ab") as output:
            result = subprocess.run(
                ["runuser", "-u", SUPERUSER, "--", *argv],
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=120,
            )
        if result.returncode != 0:
            raise ProcessError(
                f"{Path(argv[0]).name} failed (status {result.returncode}); last lines of "
                f"{commands}:\n{log_tail(commands)}\n{self.log_path}:\n{log_tail(self.log_path)}"
            )

    @property
    def log_path(self) -> Path:
        assert self.folder is not None
        return self.folder / "postgres.log"

    @property
    def data_dir(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    def start(self) -> Self:
        """Create the cluster (first time only) and start its server."""
        if not (BIN / "initdb").exists():
            raise ProcessError(f"PostgreSQL 15 is not installed ({BIN}): run images/setup.sh")
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="continuum-pg-"))
            self._own_folder = True
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, SUPERUSER, SUPERUSER)
        self.port = self.port or free_port()
        try:
            if not (self.data_dir / "PG_VERSION").exists():
                self._run(
                    str(BIN / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust"
                )  # fmt: skip
            options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                # every store instance of a test session holds a connection until collected
                options += " -c max_connections=300"
            self._run(
                str(BIN / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
                "-l", str(self.log_path), "-w", "start",
            )  # fmt: skip
        except BaseException:
            self.stop()  # a context manager's exit does not run when its start fails
            raise
        return self

    def createdb(self, name: str) -> str:
        """Create database ``name`` (UTF-8) and return its SQLAlchemy/psycopg URL."""
        self._run(
            str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
            "-U", SUPERUSER, "--encoding=UTF-8", "--template=template0", name,
        )  # fmt: skip
        return self.url(name)

    def url(self, database: str) -> str:
        """The ``postgresql+psycopg://`` URL of ``database`` as the superuser."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        """The libpq DSN of ``database`` as the superuser."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def stop(self) -> None:
        """Stop the server (fast shutdown); remove the folder when this object made it."""
        if self.folder is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._run(str(BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            except ProcessError:
                pass  # already gone: nothing to stop
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
