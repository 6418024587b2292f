"""Real local Slurm clusters ("sites") for the demo federation and the integration tests.

Each :class:`LocalSlurmCluster` is a complete Slurm cluster on this machine: one slurmctld and
one slurmd per node, with a ``slurm.conf`` generated here from a validated spec (see
``images/slurm/clusters.yaml``), its own ports, spool, state, pid and log files under its state
folder, and authentication through a private munged (:class:`~.munge.MungeDaemon`).  Several
clusters run side by side, independently, and nothing listens beyond the loopback address
that this machine's host name resolves to (127.0.0.1 here).

Written for Debian's ``slurm-wlm`` 22.05 inside a container: no cgroups (``proctrack/linuxproc``,
``task/none``) and ``SlurmdParameters=config_overrides`` so a node may declare more CPUs, memory
and GPUs than the machine has.  Accounting is off unless a slurmdbd is given (``accounting``;
no energy plugin then: ``ConsumedEnergyRaw`` stays empty).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .process import ManagedProcess, ProcessError, Service, free_port, log_tail
from .slurm_conf import gpu_files, local_host_address, render_gres_conf, render_slurm_conf
from .slurm_spec import (
    SAFE_PATH_RE,
    ClusterSpec,
    ClusterSpecError,
    NodeSpec,
    PartitionSpec,
    load_cluster_specs,
    parse_cluster_spec,
)

__all__ = [
    "ClusterSpecError",
    "LocalSlurmCluster",
    "load_cluster_specs",
    "local_host_address",
    "scratch_site",
]


def _run(argv: list[str], env: Mapping[str, str], timeout: float = 15.0) -> str:
    return subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


class LocalSlurmCluster(Service):
    """One real Slurm cluster on this machine: slurmctld plus one slurmd per node.

    Parameters
    ----------
    name
        The cluster's name (Slurm's ``ClusterName``).
    spec
        The cluster's spec as in ``clusters.yaml`` (or an already parsed :class:`ClusterSpec`).
    state_dir
        Parent folder; this cluster lives in ``state_dir/<name>``.  Its parents must be
        traversable by the users who submit jobs, since they read ``slurm.conf`` inside.
    munge_socket
        Socket of the munged that every daemon and client of this cluster authenticates with.
    accounting
        :attr:`.SlurmDBD.address` of the slurmdbd recording the jobs (the cluster registered
        there), or ``None``: no accounting.
    jwt
        Also accept JSON Web Tokens (``AuthAltTypes=auth/jwt``, key :attr:`jwt_key`), as
        ``slurmrestd`` and ``scontrol token`` need; munge stays the main authentication.

    Attributes
    ----------
    name : str
        The cluster's name.
    spec : ClusterSpec
        The validated spec.
    root : Path
        ``state_dir/<name>``: holds ``etc/`` (configuration), ``log/``, ``spool/``, ``run/`` and
        ``dev/`` (fake GPU device files).
    conf_path : Path
        The generated ``slurm.conf``.
    log_dir : Path
        Slurm's log files (``slurmctld.log``, ``slurmd-<node>.log``) and the daemons' console
        output (``console/``).
    ctld_port, slurmd_ports : int, dict[str, int]
        TCP ports on the loopback address, chosen by :meth:`write_config`.

    Notes
    -----
    slurmctld starts batch jobs from its once-a-second background loop, so sbatch to RUNNING
    takes 0.5 s on average on an idle cluster, at most about 1 s.  In the first 3 s after
    slurmctld starts it is up to 3 s: ``batch_sched_delay=0`` only takes effect after the
    scheduler's first pass.
    """

    def __init__(
        self,
        name: str,
        spec: Mapping[str, Any] | ClusterSpec,
        state_dir: Path,
        munge_socket: Path,
        accounting: tuple[str, int] | None = None,
        jwt: bool = False,
    ) -> None:
        self.spec = spec if isinstance(spec, ClusterSpec) else parse_cluster_spec(name, spec)
        if self.spec.name != name:
            raise ClusterSpecError(f"spec of {self.spec.name!r} given for cluster {name!r}")
        self.name = name
        self.accounting = accounting
        self.jwt = jwt
        self.root = Path(state_dir).absolute() / name
        self.munge_socket = Path(munge_socket).absolute()
        for path in (self.root, self.munge_socket):
            if not SAFE_PATH_RE.fullmatch(str(path)):
                raise ValueError(f"{path} cannot be written into slurm.conf safely")
        self.conf_dir = self.root / "etc"
        self.conf_path = self.conf_dir / "slurm.conf"
        self.log_dir = self.root / "log"
        # slurmctld's signing key for tokens: with its state (0700), the file 0600
        self.jwt_key = self.root / "spool" / "ctld" / "jwt_hs256.key"
        self.ctld_port = 0
        self.slurmd_ports: dict[str, int] = {}
        self._ctld: ManagedProcess | None = None
        self._slurmds: dict[str, ManagedProcess] = {}

    # -- configuration -------------------------------------------------------------------------

    @property
    def partitions(self) -> dict[str, PartitionSpec]:
        """Partition name to its spec (name, default, max_time, max_time_seconds, nodes)."""
        return {p.name: p for p in self.spec.partitions}

    @property
    def default_partition(self) -> str:
        """Name of the default partition."""
        return self.spec.default_partition.name

    @property
    def nodes(self) -> dict[str, NodeSpec]:
        """Node name to its spec."""
        return {n.name: n for n in self.spec.nodes}

    @property
    def ports(self) -> list[int]:
        """Every TCP port this cluster's daemons listen on."""
        return [self.ctld_port, *self.slurmd_ports.values()] if self.ctld_port else []

    def env(self) -> dict[str, str]:
        """Environment additions for Slurm client commands aimed at this cluster."""
        return {"SLURM_CONF": str(self.conf_path)}

    def client_env(self) -> dict[str, str]:
        """This process's environment plus :meth:`env` (for ``subprocess`` calls)."""
        return {**os.environ, **self.env()}

    def write_config(self) -> Path:
        """Choose free ports, create the cluster's folders and write its configuration.

        Returns
        -------
        Path
            :attr:`conf_path`.
        """
        self.ctld_port = free_port()
        self.slurmd_ports = {}
        for node in self.spec.nodes:
            port = free_port()
            while port == self.ctld_port or port in self.slurmd_ports.values():
                port = free_port()
            self.slurmd_ports[node.name] = port
        # 0755 where users' commands and jobs must read (configuration, device files);
        # 0700 for the controller's state
        for folder, mode in (
            (self.root, 0o755),
            (self.conf_dir, 0o755),
            (self.log_dir, 0o755),
            (self.log_dir / "console", 0o755),
            (self.root / "run", 0o755),
            (self.root / "spool", 0o755),
            (self.root / "spool" / "ctld", 0o700),
            (self.root / "dev", 0o755),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(mode)
        for node in self.spec.nodes:
            spool = self.root / "spool" / f"d-{node.name}"
            spool.mkdir(exist_ok=True)
            spool.chmod(0o755)
            for dev in gpu_files(self.root, node):
                dev.unlink(missing_ok=True)
                dev.symlink_to("/dev/null")
        if self.jwt and not self.jwt_key.exists():
            fd = os.open(self.jwt_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as key:
                key.write(secrets.token_bytes(32))
        files = {
            self.conf_path: render_slurm_conf(self),
            self.conf_dir / "gres.conf": render_gres_conf(self),
            self.conf_dir / "plugstack.conf": "# no SPANK plugins\n",
        }
        for path, text in files.items():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(path)
        return self.conf_path

    # -- processes ---------------------------------------------------------------------------

    def _daemon_env(self) -> dict[str, str]:
        # SLURM_CONF in the daemons' environment is inherited by slurmstepd and the jobs, which
        # is how stop() recognises this cluster's leftover processes
        return self.client_env()

    def sinfo_states(self) -> dict[str, str]:
        """Node name to its state as ``sinfo`` reports it (``idle``, ``alloc``, ``down*``, ...)."""
        try:
            out = _run(["sinfo", "--noheader", "--Node", "--format=%N %t"], self.client_env())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return {}
        states: dict[str, str] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                states[parts[0]] = parts[1]
        return states

    def _nodes_idle(self) -> bool:
        if self._ctld is None or not self._ctld.running:
            raise ProcessError(
                f"slurmctld of {self.name!r} died; last lines of its log:\n"
                f"{log_tail(self.log_dir / 'slurmctld.log')}"
            )
        for node, proc in self._slurmds.items():
            if not proc.running:
                raise ProcessError(
                    f"slurmd of {self.name!r}/{node} died; last lines of its log:\n"
                    f"{log_tail(self.log_dir / f'slurmd-{node}.log')}"
                )
        states = self.sinfo_states()
        return all(states.get(n.name) == "idle" for n in self.spec.nodes)

    def _ctld_answers(self) -> bool:
        try:
            out = _run(["scontrol", "ping"], self.client_env(), timeout=10)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return False
        return "is UP" in out

    def _start_once(self, timeout: float) -> None:
        self.write_config()
        env = self._daemon_env()
        console = self.log_dir / "console"
        self.start_controller(timeout)
        for node in self.spec.nodes:
            self._slurmds[node.name] = ManagedProcess(
                f"slurmd-{node.name}",
                ["slurmd", "-D", "-N", node.name, "-f", str(self.conf_path)],
                console,
                env=env,
                cwd=self.root,
            ).start()
        for proc in self._slurmds.values():
            proc.wait_ready(self._nodes_idle, timeout=timeout)

    def start_controller(self, timeout: float = 60.0) -> None:
        """Start slurmctld; after :meth:`stop_controller` it recovers its jobs from its state."""
        self._ctld = ManagedProcess(
            "slurmctld",
            ["slurmctld", "-D", "-i", "-f", str(self.conf_path)],
            self.log_dir / "console",
            env=self._daemon_env(),
            cwd=self.root,
        ).start_ready(self._ctld_answers, timeout=timeout)

    def stop_controller(self) -> None:
        """Stop slurmctld only, as in a controller outage: slurmd and the jobs keep running."""
        if self._ctld is not None:
            self._ctld.stop(timeout=30)
            self._ctld = None

    def start(self, timeout: float = 60.0) -> LocalSlurmCluster:
        """Write the configuration, start slurmctld and the slurmds, wait until nodes are idle.

        Parameters
        ----------
        timeout
            Seconds to wait for each daemon.

        Returns
        -------
        LocalSlurmCluster
            ``self``, started.

        Raises
        ------
        ProcessError
            If a daemon dies or the nodes are not idle in time (the message quotes the log).
        """
        if self.running:
            return self
        if not self.munge_socket.exists():
            raise ProcessError(f"no munge socket at {self.munge_socket}: start MungeDaemon first")
        # a port picked free may be taken by someone else before the daemon binds it
        for attempt in range(3):
            try:
                self._start_once(timeout)
                return self
            except BaseException as err:
                self.stop()
                in_use = "Address already in use" in str(err) or "Address already in use" in (
                    log_tail(self.log_dir / "slurmctld.log", 100)
                    + "".join(
                        log_tail(self.log_dir / f"slurmd-{n.name}.log", 100)
                        for n in self.spec.nodes
                    )
                )
                if not (isinstance(err, ProcessError) and in_use and attempt < 2):
                    raise
        raise AssertionError("unreachable")

    @property
    def running(self) -> bool:
        """Whether slurmctld and every slurmd are alive."""
        return (
            self._ctld is not None
            and self._ctld.running
            and len(self._slurmds) == len(self.spec.nodes)
            and all(p.running for p in self._slurmds.values())
        )

    def job_ids(self) -> list[str]:
        """IDs of the jobs slurmctld knows that have not finished (all users)."""
        try:
            out = _run(["squeue", "--noheader", "--format=%A"], self.client_env())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return []
        return out.split()

    def _cancel_jobs(self, timeout: float) -> None:
        if self._ctld is None or not self._ctld.running:
            return
        ids = self.job_ids()
        if not ids:
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _run(["scancel", "--full", *ids], self.client_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.job_ids():
            time.sleep(0.2)

    def leftover_pids(self) -> list[int]:
        """Processes (daemons, step daemons, jobs, clients) carrying this cluster's SLURM_CONF."""
        marker = f"SLURM_CONF={self.conf_path}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry.name))
        return pids

    def _kill_leftovers(self, spare_group: int | None = None) -> None:
        for _ in range(20):
            pids = []
            for pid in self.leftover_pids():
                with contextlib.suppress(ProcessLookupError):
                    # slurmctld's helper slurmscriptd shares its group: killing it makes
                    # slurmctld's own shutdown hang
                    if spare_group is not None and os.getpgid(pid) == spare_group:
                        continue
                    pids.append(pid)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel all jobs, stop the slurmds, then slurmctld, and kill anything left over.

        Idempotent.  "Anything left over" is every process whose environment holds this
        cluster's ``SLURM_CONF`` (step daemons and job processes inherit it).

        Parameters
        ----------
        timeout
            Seconds to wait for cancelled jobs to leave the queue.
        """
        self._cancel_jobs(timeout)
        for proc in self._slurmds.values():
            proc.stop()
        self._slurmds = {}
        ctld_group = (
            self._ctld.proc.pid if self._ctld is not None and self._ctld.proc is not None else None
        )
        # step daemons and jobs outlive slurmd; kill them while slurmctld still runs
        self._kill_leftovers(spare_group=ctld_group)
        if self._ctld is not None:
            self._ctld.stop()
            self._ctld = None
        self._kill_leftovers()


@contextlib.contextmanager
def scratch_site(name: str, spec: ClusterSpec) -> Iterator[tuple[Path, LocalSlurmCluster]]:
    """One site in a throwaway folder, for the benchmarks: yields (folder, cluster).

    The folder (0755, so jobs running as demo users can reach what is put there) holds the
    site's munged and Slurm state; everything is stopped and removed on exit.
    """
    from .munge import MungeDaemon

    with tempfile.TemporaryDirectory(prefix="continuum-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        with (
            MungeDaemon(root / "munge") as munge,
            LocalSlurmCluster(name, spec, root / "slurm", munge.socket) as cluster,
        ):
            yield root, cluster
