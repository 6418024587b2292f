"""A private MariaDB server (Debian's 10.11) for the federation's Slurm accounting database.

Like :mod:`.postgres`, never the machine's own server: ``mariadb-install-db`` creates a data
folder of our own, ``mariadbd`` runs in the foreground as the ``mysql`` account under
:class:`~.process.ManagedProcess`, listening on 127.0.0.1 (a free port) and on a socket in our
folder, and stops with its caller.  Its administrator is ``root`` through the Unix socket only
(MariaDB's ``unix_socket`` authentication: the process must run as root), so no administrator
password exists anywhere.  One database and one user are made for :mod:`.slurmdbd`; the user's
random password lives in a 0600 file and is only ever written to slurmdbd's own 0600
configuration, never to a log or a command line.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from .hub import read_or_create_secret
from .process import ManagedProcess, ProcessError, Service, free_port, log_tail

#: the account mariadbd runs as (made by Debian's mariadb-server package)
ACCOUNT = "mysql"


def _mysql_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(ACCOUNT)
    except KeyError:
        raise ProcessError(
            f"no {ACCOUNT!r} account: MariaDB is not installed (run images/setup.sh)"
        ) from None
    return entry.pw_uid, entry.pw_gid


@dataclass
class MariaDBServer(Service):
    """Start and stop a private MariaDB server holding one database for one user.

    Parameters
    ----------
    folder
        Where the server lives (``data/``, ``run/``, ``log/`` and the user's password file);
        created if missing and kept, so a second start finds its data.
    port
        TCP port on 127.0.0.1; a free one when ``None``.
    database, user
        The database to create and the user with every right on it (from 127.0.0.1 only).

    Attributes
    ----------
    password : str
        The user's password, read from (or created in) ``folder/db-password`` (0600).
    """

    folder: Path
    port: int | None = None
    database: str = "slurm_acct_db"
    user: str = "slurm"
    password: str = field(default="", repr=False)
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def socket(self) -> Path:
        """The server's Unix socket (the administrator's way in)."""
        return self.folder / "run" / "mariadb.sock"

    @property
    def log_path(self) -> Path:
        return self.folder / "log" / "mariadbd.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def sql(self, statements: str, timeout: float = 30.0) -> str:
        """Run SQL as the administrator (through the socket) and return the tab-separated rows.

        The statements travel on standard input, so values in them (the user's password) never
        appear in a process list.

        Raises
        ------
        ProcessError
            If the client fails (the message has its error output, not the statements).
        """
        result = subprocess.run(
            [
                "mariadb", "--no-defaults", f"--socket={self.socket}", "--user=root",
                "--batch", "--skip-column-names",
            ],
            input=statements,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ProcessError(f"mariadb client failed: {result.stderr.strip()}")
        return result.stdout

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.sql("SELECT 1", timeout=10).strip() == "1"
        except (ProcessError, subprocess.TimeoutExpired):
            return False

    def _install(self) -> None:
        """Create the system tables once (about half a second)."""
        if (self.data_dir / "mysql").is_dir():
            return
        install_log = self.folder / "log" / "install.log"
        with open(install_log, "ab") as output:
            result = subprocess.run(
                [
                    "mariadb-install-db", "--no-defaults", f"--datadir={self.data_dir}",
                    f"--user={ACCOUNT}", "--auth-root-authentication-method=socket",
                    "--skip-test-db", "--skip-name-resolve",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise ProcessError(
                f"mariadb-install-db failed (status {result.returncode}):\n{log_tail(install_log)}"
            )

    def start(self, timeout: float = 60.0) -> Self:
        """Create the data folder (first time only), start mariadbd, make the database and user.

        Raises
        ------
        ProcessError
            If MariaDB is missing, or the server exits or does not answer in time.
        """
        if self.running:
            return self
        if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None:
            raise ProcessError("mariadbd is not installed (Debian mariadb-server): run setup.sh")
        uid, gid = _mysql_ids()
        # the folder itself stays root's (0711: the server's account passes through to data/
        # and run/, its own); the password file and log/ inside are root's alone
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o711)
        for sub, mode in (("data", 0o700), ("run", 0o750), ("log", 0o700)):
            path = self.folder / sub
            path.mkdir(exist_ok=True)
            path.chmod(mode)
            if sub != "log":
                shutil.chown(path, uid, gid)
        self.password = read_or_create_secret(self.folder / "db-password")
        self.port = self.port or free_port()
        try:
            self._install()
            self._process = ManagedProcess(
                "mariadbd",
                [
                    "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.data_dir}",
                    f"--user={ACCOUNT}", f"--socket={self.socket}", f"--port={self.port}",
                    "--bind-address=127.0.0.1", f"--pid-file={self.socket.with_suffix('.pid')}",
                    "--skip-name-resolve", "--performance-schema=OFF",
                    # the lock timeout slurmdbd asks for; a small buffer pool (slurmdbd logs a
                    # warning about it, harmless for a few thousand jobs)
                    "--innodb-buffer-pool-size=128M", "--innodb-lock-wait-timeout=900",
                ],
                self.folder / "log",
                cwd=self.folder,
            ).start_ready(self._answers, timeout=timeout)  # fmt: skip
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_database(self) -> None:
        # the password is hex (read_or_create_secret): nothing in it needs quoting
        account = f"'{self.user}'@'127.0.0.1'"
        self.sql(
            f"CREATE DATABASE IF NOT EXISTS `{self.database}`;\n"
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{self.password}';\n"
            f"ALTER USER {account} IDENTIFIED BY '{self.password}';\n"
            f"GRANT ALL ON `{self.database}`.* TO {account};\n"
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM: a clean InnoDB shutdown); idempotent.  Data stay."""
        if self._process is not None:
            self._process.stop(timeout=60)
            self._process = None
