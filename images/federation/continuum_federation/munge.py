"""A private MUNGE daemon for the local federation (demo and test fixtures).

The local Slurm clusters authenticate with MUNGE.  Rather than touching the system's munged and
``/etc/munge/munge.key``, the federation runs its own munged with its own key, socket, pid and
seed files in a state folder; every Slurm daemon and client is pointed at that socket through
``AuthInfo=socket=...`` in its ``slurm.conf``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .process import ManagedProcess, ProcessError, Service

#: Bytes of key material when ``mungekey`` is not available (mungekey's default is 1024 bits).
KEY_BYTES = 128


class MungeDaemon(Service):
    """A munged of our own, run in the foreground under :class:`ManagedProcess`.

    Parameters
    ----------
    state_dir
        Folder for the key, socket, pid, seed and log files; created if missing.  Its parents
        must be traversable by every user whose jobs or commands talk to Slurm, because the
        socket inside it is how they authenticate.

    Attributes
    ----------
    state_dir : Path
        The folder given above.
    key_path : Path
        The daemon's key (mode 0400, owned by the user running the daemon).
    log_dir : Path
        Folder holding ``munged.log`` (the daemon's output).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.key_path = self.state_dir / "munge.key"
        self.log_dir = self.state_dir / "log"
        self._socket = self.state_dir / "munge.socket"
        self._process: ManagedProcess | None = None

    @property
    def socket(self) -> Path:
        """Path of the daemon's Unix socket (``munge -S``, Slurm's ``AuthInfo=socket=``)."""
        return self._socket

    @property
    def running(self) -> bool:
        """Whether the daemon process is alive."""
        return self._process is not None and self._process.running

    def _create_key(self) -> None:
        if self.key_path.exists():
            return
        mungekey = shutil.which("mungekey") or (
            "/usr/sbin/mungekey" if Path("/usr/sbin/mungekey").exists() else None
        )
        if mungekey is not None:
            subprocess.run(
                [mungekey, "--create", f"--keyfile={self.key_path}"],
                check=True,
                capture_output=True,
            )
        else:
            # O_EXCL + mode 0600 so the key is never readable by others, not even briefly
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as key:
                key.write(os.urandom(KEY_BYTES))
        # munged refuses keys readable by group or others
        self.key_path.chmod(0o400)

    def check(self) -> bool:
        """Whether a credential encoded through the socket decodes through it again."""
        if not self._socket.exists():
            return False
        try:
            cred = subprocess.run(
                ["munge", "--no-input", f"--socket={self._socket}"],
                capture_output=True,
                timeout=10,
                check=True,
            ).stdout
            subprocess.run(
                ["unmunge", f"--socket={self._socket}"],
                input=cred,
                capture_output=True,
                timeout=10,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return False
        return True

    def start(self, timeout: float = 30.0) -> MungeDaemon:
        """Create the key if needed, start munged and wait until it answers.

        Parameters
        ----------
        timeout
            Seconds to wait for the daemon to answer.

        Returns
        -------
        MungeDaemon
            ``self``, started.

        Raises
        ------
        ProcessError
            If munged exits or does not answer in time (the message quotes its log).
        """
        if self.running:
            return self
        munged = shutil.which("munged") or "/usr/sbin/munged"
        if not Path(munged).exists():
            raise ProcessError("munged is not installed (Debian package 'munge')")
        # 0755: ordinary users' sbatch and jobs must reach the socket inside; munged itself
        # rejects a socket folder writable by group or others
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o755)
        self.log_dir.mkdir(exist_ok=True)
        self._create_key()
        # a socket left by a killed daemon would make munged refuse to start
        for stale in (self._socket, Path(f"{self._socket}.lock")):
            stale.unlink(missing_ok=True)
        argv = [
            munged,
            "--foreground",
            f"--socket={self._socket}",
            f"--key-file={self.key_path}",
            f"--pid-file={self.state_dir / 'munged.pid'}",
            f"--seed-file={self.state_dir / 'munged.seed'}",
            "--num-threads=4",
        ]
        # in the foreground munged logs to stderr (not --log-file): ManagedProcess keeps it
        process = ManagedProcess("munged", argv, self.log_dir, cwd=self.state_dir)
        self._process = process.start_ready(self.check, timeout=timeout)
        return self

    def stop(self) -> None:
        """Stop munged (idempotent)."""
        if self._process is not None:
            self._process.stop()
            self._process = None
