"""A site's Slurm REST API: Debian's slurmrestd (22.05) in front of one local cluster.

What a facility offers a hub that may not log in to its login nodes: slurmrestd with
``rest_auth/jwt``, speaking to a slurmctld that accepts JSON Web Tokens besides munge
(:class:`~.slurm.LocalSlurmCluster` with ``jwt=True``: ``AuthAltTypes=auth/jwt`` and a 0600 key
in its controller's state).  slurmrestd listens on 127.0.0.1 only and runs as ``nobody`` (it
refuses root and SlurmUser); it holds no token itself, each request brings one.

The hub's token is minted with ``scontrol token username=root`` (root is this federation's
SlurmUser, whose tokens may name another user in ``X-SLURM-USER-NAME``: the REST form of the
local transport's ``sudo -u``) and written to :attr:`SlurmRestD.token_file` (0600); nothing
prints it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Self

from .process import ManagedProcess, ProcessError, Service, free_port, port_open
from .slurm import LocalSlurmCluster

SLURMRESTD = "/usr/sbin/slurmrestd"
#: the REST API the hub speaks (Slurm 22.05's newest)
OPENAPI_PLUGIN = "openapi/v0.0.38"
#: seconds a minted token is valid: longer than any test session or demo
TOKEN_LIFESPAN = 7 * 24 * 3600


class SlurmRestD(Service):
    """slurmrestd for ``cluster`` on 127.0.0.1, with a hub token in a 0600 file.

    Parameters
    ----------
    cluster
        The started cluster it serves (made with ``jwt=True``).
    state_dir
        Folder (0700) for the token file and the log.

    Attributes
    ----------
    port : int
        slurmrestd's port on 127.0.0.1 (kept across :meth:`stop`/:meth:`start`).
    token_file : Path
        The hub's token (``SLURM_JWT=…``, 0600).
    """

    def __init__(self, cluster: LocalSlurmCluster, state_dir: Path) -> None:
        if not cluster.jwt:
            raise ValueError(f"cluster {cluster.name} does not accept tokens (jwt=False)")
        self.cluster = cluster
        self.state_dir = Path(state_dir)
        self.token_file = self.state_dir / "hub-token"
        self.port = 0
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self.port}"

    def mint_token(self) -> None:
        """Write a fresh token for root (the SlurmUser) to :attr:`token_file`, 0600."""
        result = subprocess.run(
            ["scontrol", "token", "username=root", f"lifespan={TOKEN_LIFESPAN}"],
            env=self.cluster.client_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0 or not result.stdout.startswith("SLURM_JWT="):
            raise ProcessError(f"scontrol token failed: {result.stderr.strip()[:300]}")
        tmp = self.token_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(result.stdout.strip() + "\n")
        tmp.replace(self.token_file)

    def start(self, timeout: float = 30.0) -> Self:
        """Mint the token (first start), start slurmrestd and wait for its port."""
        if not Path(SLURMRESTD).exists():
            raise ProcessError(f"{SLURMRESTD} is missing: run images/setup.sh (slurmrestd)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        if not self.token_file.exists():
            self.mint_token()
        self.port = self.port or free_port()
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "SLURM_CONF": str(self.cluster.conf_path),
            # slurmrestd loads auth/jwt for its own requests to slurmctld only with this
            "SLURM_JWT": "daemon",
        }
        self._process = ManagedProcess(
            "slurmrestd",
            [
                SLURMRESTD,
                *("-a", "rest_auth/jwt", "-s", OPENAPI_PLUGIN),
                *("-u", "nobody", "-g", "nogroup"),
                f"127.0.0.1:{self.port}",
            ],
            self.state_dir,
            env=env,
            cwd=Path("/"),
        )
        self._process.start_ready(lambda: port_open(self.port), timeout=timeout)
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def stop(self) -> None:
        """Stop slurmrestd (the token file stays, for a later :meth:`start`)."""
        if self._process is not None:
            self._process.stop()
            self._process = None
