"""Real local Slurm clusters ("sites") for the demo federation and the integration tests.

Each :class:`LocalSlurmCluster` is a complete Slurm cluster on this machine: one slurmctld and
one slurmd per node, with a ``slurm.conf`` generated here from a validated spec (see
``images/slurm/clusters.yaml``), its own ports, spool, state, pid and log files under its state
folder, and authentication through a private munged (:class:`~.munge.MungeDaemon`).  Several
clusters run side by side, independently, and nothing listens beyond the loopback address
that this machine's host name resolves to (127.0.0.1 here).

Written for Debian's ``slurm-wlm`` 22.05 inside a container: no cgroups (``proctrack/linuxproc``,
``task/none``), no accounting database, and ``SlurmdParameters=config_overrides`` so a node may
declare more CPUs, memory and GPUs than the machine has.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from continuum_hub.federation.process import ManagedProcess, ProcessError, free_port, log_tail

#: Cluster names (Slurm lowercases ClusterName; digits-first names confuse its hostlists).
CLUSTER_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: Node, partition and GRES names.
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
#: A short host name as Slurm compares it with ``gethostname()``.
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
#: ``NAME[:TYPE]:COUNT`` as in ``gpu:demo:2``.
GRES_RE = re.compile(
    r"^(?P<name>[a-z][a-z0-9_]{0,39})(?::(?P<type>[a-z][a-z0-9_-]{0,39}))?"
    r":(?P<count>[0-9]{1,4})$"
)
#: Paths written into slurm.conf: no blanks, '#', '=' or quotes that would change its meaning.
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._+/-]+$")
#: Slurm time limits: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``.
TIME_RE = re.compile(
    r"^(?:(?P<days>\d{1,4})-(?P<dh>\d{1,2})(?::(?P<dm>\d{1,2})(?::(?P<ds>\d{1,2}))?)?"
    r"|(?P<a>\d{1,6})(?::(?P<b>\d{1,2})(?::(?P<c>\d{1,2}))?)?|UNLIMITED|INFINITE)$"
)

#: Default memory per CPU of a job that asks for none (MB).
DEFAULT_MEM_PER_CPU_MB = 1024

_TOP_KEYS = {"clusters"}
_CLUSTER_KEYS = {"nodes", "partitions", "def_mem_per_cpu_mb"}
_NODE_KEYS = {"name", "cpus", "memory_mb", "gres"}
_PARTITION_KEYS = {"name", "default", "max_time", "nodes"}


class ClusterSpecError(ValueError):
    """A cluster spec (``clusters.yaml``) is malformed; the message says where."""


def time_limit_seconds(value: str) -> int | None:
    """Seconds in a Slurm time limit, or ``None`` for ``UNLIMITED``.

    Parameters
    ----------
    value
        A Slurm time string such as ``8:00:00`` or ``2-00:00:00``.

    Raises
    ------
    ValueError
        If ``value`` is not a Slurm time string.
    """
    match = TIME_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a Slurm time limit: {value!r}")
    if value in ("UNLIMITED", "INFINITE"):
        return None
    g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "days" in g:
        return ((g["days"] * 24 + g["dh"]) * 60 + g.get("dm", 0)) * 60 + g.get("ds", 0)
    if "c" in g:  # HH:MM:SS
        return (g["a"] * 60 + g["b"]) * 60 + g["c"]
    if "b" in g:  # MM:SS
        return g["a"] * 60 + g["b"]
    return g["a"] * 60  # MM


@dataclass(frozen=True)
class GresSpec:
    """One generic resource of a node, e.g. ``gpu:demo:2``."""

    name: str
    type: str | None
    count: int

    def __str__(self) -> str:
        parts = [self.name, *([self.type] if self.type else []), str(self.count)]
        return ":".join(parts)


@dataclass(frozen=True)
class NodeSpec:
    """One compute node as declared to Slurm."""

    name: str
    cpus: int
    memory_mb: int
    gres: tuple[GresSpec, ...] = ()

    @property
    def gpus(self) -> int:
        """Number of declared GPUs."""
        return sum(g.count for g in self.gres if g.name == "gpu")


@dataclass(frozen=True)
class PartitionSpec:
    """One partition (queue) of a cluster."""

    name: str
    default: bool
    max_time: str
    nodes: tuple[str, ...]

    @property
    def max_time_seconds(self) -> int | None:
        """The time limit in seconds, ``None`` when unlimited."""
        return time_limit_seconds(self.max_time)


@dataclass(frozen=True)
class ClusterSpec:
    """A validated cluster spec."""

    name: str
    nodes: tuple[NodeSpec, ...]
    partitions: tuple[PartitionSpec, ...]
    def_mem_per_cpu_mb: int = DEFAULT_MEM_PER_CPU_MB

    @property
    def default_partition(self) -> PartitionSpec:
        """The partition jobs go to when they name none."""
        return next(p for p in self.partitions if p.default)


def _check_keys(raw: Mapping[str, Any], allowed: set[str], required: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise ClusterSpecError(
            f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})"
        )
    missing = required - set(raw)
    if missing:
        raise ClusterSpecError(f"{where}: missing keys {sorted(missing)}")


def _name(value: object, pattern: re.Pattern[str], where: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ClusterSpecError(f"{where}: {value!r} must be a string matching {pattern.pattern}")
    return value


def _positive_int(value: object, where: str) -> int:
    # bool is an int subclass: "cpus: yes" must not become 1
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ClusterSpecError(f"{where}: {value!r} must be a positive integer")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ClusterSpecError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ClusterSpecError(f"{where}: expected a non-empty list")
    return value


def parse_cluster_spec(name: str, raw: Mapping[str, Any]) -> ClusterSpec:
    """Validate one cluster's spec (a value under ``clusters:`` in ``clusters.yaml``).

    Parameters
    ----------
    name
        The cluster's name.
    raw
        The spec as read from YAML.

    Returns
    -------
    ClusterSpec
        The validated spec.

    Raises
    ------
    ClusterSpecError
        Naming the offending key when anything is malformed.
    """
    where = f"cluster {name!r}"
    _name(name, CLUSTER_NAME_RE, "cluster name")
    raw = _mapping(raw, where)
    _check_keys(raw, _CLUSTER_KEYS, {"nodes", "partitions"}, where)

    nodes: list[NodeSpec] = []
    for i, raw_node in enumerate(_list(raw["nodes"], f"{where}.nodes")):
        nwhere = f"{where}.nodes[{i}]"
        raw_node = _mapping(raw_node, nwhere)
        _check_keys(raw_node, _NODE_KEYS, {"name", "cpus", "memory_mb"}, nwhere)
        gres: list[GresSpec] = []
        raw_gres = raw_node.get("gres", [])
        if not isinstance(raw_gres, list):
            raise ClusterSpecError(f"{nwhere}.gres: expected a list like [gpu:demo:2]")
        for item in raw_gres:
            match = GRES_RE.fullmatch(item) if isinstance(item, str) else None
            if match is None:
                raise ClusterSpecError(
                    f"{nwhere}.gres: {item!r} must look like NAME:TYPE:COUNT or NAME:COUNT"
                )
            count = _positive_int(int(match["count"]), f"{nwhere}.gres {item!r}")
            gres.append(GresSpec(match["name"], match["type"], count))
        if len({g.name for g in gres}) != len(gres):
            raise ClusterSpecError(f"{nwhere}.gres: one entry per resource name")
        nodes.append(
            NodeSpec(
                name=_name(raw_node["name"], NAME_RE, f"{nwhere}.name"),
                cpus=_positive_int(raw_node["cpus"], f"{nwhere}.cpus"),
                memory_mb=_positive_int(raw_node["memory_mb"], f"{nwhere}.memory_mb"),
                gres=tuple(gres),
            )
        )
    node_names = [n.name for n in nodes]
    if len(set(node_names)) != len(node_names):
        raise ClusterSpecError(f"{where}.nodes: duplicate node names {node_names}")

    partitions: list[PartitionSpec] = []
    for i, raw_part in enumerate(_list(raw["partitions"], f"{where}.partitions")):
        pwhere = f"{where}.partitions[{i}]"
        raw_part = _mapping(raw_part, pwhere)
        _check_keys(raw_part, _PARTITION_KEYS, {"name", "max_time"}, pwhere)
        max_time = raw_part["max_time"]
        if not isinstance(max_time, str):
            raise ClusterSpecError(
                f"{pwhere}.max_time: {max_time!r} must be a quoted string such as '8:00:00' "
                "(YAML reads an unquoted 8:00:00 as a base-60 integer)"
            )
        try:
            time_limit_seconds(max_time)
        except ValueError as err:
            raise ClusterSpecError(f"{pwhere}.max_time: {err}") from None
        default = raw_part.get("default", False)
        if not isinstance(default, bool):
            raise ClusterSpecError(f"{pwhere}.default: {default!r} must be true or false")
        part_nodes = raw_part.get("nodes", node_names)
        if not isinstance(part_nodes, list) or not part_nodes:
            raise ClusterSpecError(f"{pwhere}.nodes: expected a non-empty list of node names")
        for node in part_nodes:
            if node not in node_names:
                raise ClusterSpecError(f"{pwhere}.nodes: {node!r} is not a node of {name!r}")
        partitions.append(
            PartitionSpec(
                name=_name(raw_part["name"], NAME_RE, f"{pwhere}.name"),
                default=default,
                max_time=max_time,
                nodes=tuple(part_nodes),
            )
        )
    part_names = [p.name for p in partitions]
    if len(set(part_names)) != len(part_names):
        raise ClusterSpecError(f"{where}.partitions: duplicate partition names {part_names}")
    if sum(p.default for p in partitions) != 1:
        raise ClusterSpecError(f"{where}.partitions: exactly one must have default: true")

    mem = _positive_int(
        raw.get("def_mem_per_cpu_mb", DEFAULT_MEM_PER_CPU_MB), f"{where}.def_mem_per_cpu_mb"
    )
    return ClusterSpec(name, tuple(nodes), tuple(partitions), mem)


def load_cluster_specs(path: Path | str) -> dict[str, dict[str, Any]]:
    """Read and validate ``clusters.yaml``.

    Parameters
    ----------
    path
        The YAML file (see ``images/slurm/clusters.yaml`` for its schema).

    Returns
    -------
    dict[str, dict]
        Cluster name to its raw spec (each one already validated by :func:`parse_cluster_spec`),
        in file order.

    Raises
    ------
    ClusterSpecError
        If the file is missing, not YAML, or any spec is malformed; the message names the file.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ClusterSpecError(f"{path}: cannot read cluster specs: {err}") from err
    except yaml.YAMLError as err:
        raise ClusterSpecError(f"{path}: not valid YAML: {err}") from err
    try:
        top = _mapping(raw, "top level")
        _check_keys(top, _TOP_KEYS, _TOP_KEYS, "top level")
        clusters = _mapping(top["clusters"], "clusters")
        if not clusters:
            raise ClusterSpecError("clusters: no cluster defined")
        for name, spec in clusters.items():
            parse_cluster_spec(name, spec)
    except ClusterSpecError as err:
        raise ClusterSpecError(f"{path}: {err}") from None
    return {name: dict(spec) for name, spec in clusters.items()}


def local_host_address() -> tuple[str, str]:
    """This machine's short host name and the loopback address it resolves to.

    With ``NoInAddrAny`` Slurm's daemons bind to the address of ``gethostname()``, so that
    address is what keeps them off the network: it must be a loopback address (Debian maps the
    host name to 127.0.1.1, containers usually to 127.0.0.1).

    Raises
    ------
    ProcessError
        If the host name is unusable or does not resolve to a loopback address.
    """
    host = socket.gethostname().split(".")[0]
    if not HOSTNAME_RE.fullmatch(host):
        raise ProcessError(f"this machine's host name {host!r} is unusable in slurm.conf")
    try:
        address = socket.gethostbyname(host)
    except OSError as err:
        raise ProcessError(f"host name {host!r} does not resolve: {err}") from err
    if not ipaddress.ip_address(address).is_loopback:
        raise ProcessError(
            f"host name {host!r} resolves to {address}, not to a loopback address: the local "
            f"Slurm daemons would listen on the network; map it in /etc/hosts (127.0.1.1 {host})"
        )
    return host, address


def _run(argv: list[str], env: Mapping[str, str], timeout: float = 15.0) -> str:
    return subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


class LocalSlurmCluster:
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
    ) -> None:
        self.spec = spec if isinstance(spec, ClusterSpec) else parse_cluster_spec(name, spec)
        if self.spec.name != name:
            raise ClusterSpecError(f"spec of {self.spec.name!r} given for cluster {name!r}")
        self.name = name
        self.root = Path(state_dir).absolute() / name
        self.munge_socket = Path(munge_socket).absolute()
        for path in (self.root, self.munge_socket):
            if not SAFE_PATH_RE.fullmatch(str(path)):
                raise ValueError(f"{path} cannot be written into slurm.conf safely")
        self.conf_dir = self.root / "etc"
        self.conf_path = self.conf_dir / "slurm.conf"
        self.log_dir = self.root / "log"
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

    def _gpu_files(self, node: NodeSpec) -> list[Path]:
        # Slurm ignores GPU files that are not character devices; symlinks to /dev/null pass
        # its stat() check and make it set CUDA_VISIBLE_DEVICES
        return [self.root / "dev" / f"{node.name}-gpu{i}" for i in range(node.gpus)]

    def _render_slurm_conf(self) -> str:
        host, address = local_host_address()
        r = self.root
        gres_types = sorted({g.name for n in self.spec.nodes for g in n.gres})
        lines = [
            "# Generated by continuum_hub.federation.slurm: do not edit, it is rewritten on start.",
            f"ClusterName={self.name}",
            f"SlurmctldHost={host}({address})",
            f"SlurmctldPort={self.ctld_port}",
            # each slurmd's own port is on its NodeName line; this is only the default
            f"SlurmdPort={next(iter(self.slurmd_ports.values()))}",
            # Slurm then binds to the address of gethostname() (checked to be loopback by
            # local_host_address) instead of 0.0.0.0; slurmctld needs its own flag for it
            "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r / 'spool' / 'ctld'}",
            f"SlurmdSpoolDir={r / 'spool' / 'd-%n'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd-%n.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd-%n.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # an empty plugin stack, not the system's /etc/slurm/plugstack.conf
            f"PlugStackConfig={self.conf_dir / 'plugstack.conf'}",
            # no cgroups in a container
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            # Debian's default /usr/bin/mail is not installed; slurmctld logs an error without it
            "MailProg=/bin/true",
            "SwitchType=switch/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            # without a default every job would claim the whole node's memory
            f"DefMemPerCPU={self.spec.def_mem_per_cpu_mb}",
            # declared CPUs/memory/GPUs may exceed this machine's
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            # finished jobs leave squeue/scontrol quickly
            "MinJobAge=30",
            # a cancelled job's processes get SIGKILL 5 s after SIGTERM (default 30 s)
            "KillWait=5",
            "InactiveLimit=0",
            "SchedulerType=sched/backfill",
            # slurmctld schedules submitted batch jobs from its once-a-second background loop,
            # but by default only 3 s after the previous run (batch_sched_delay): with 0 a job on
            # an idle node starts within 1 s (0.5 s on average)
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=5",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            "MessageTimeout=10",
        ]
        if gres_types:
            lines.append(f"GresTypes={','.join(gres_types)}")
        for node in self.spec.nodes:
            node_line = (
                f"NodeName={node.name} NodeAddr={address} NodeHostname={host} "
                f"Port={self.slurmd_ports[node.name]} CPUs={node.cpus} Boards=1 Sockets=1 "
                f"CoresPerSocket={node.cpus} ThreadsPerCore=1 RealMemory={node.memory_mb} "
                "State=UNKNOWN"
            )
            if node.gres:
                node_line += " Gres=" + ",".join(str(g) for g in node.gres)
            lines.append(node_line)
        for part in self.spec.partitions:
            lines.append(
                f"PartitionName={part.name} Nodes={','.join(part.nodes)} "
                f"Default={'YES' if part.default else 'NO'} MaxTime={part.max_time} State=UP"
            )
        return "\n".join(lines) + "\n"

    def _render_gres_conf(self) -> str:
        lines = [
            "# Generated by continuum_hub.federation.slurm: do not edit.",
            # no NVML/RSMI probing: the GPUs are declared, not real
            "AutoDetect=off",
        ]
        for node in self.spec.nodes:
            for gres in node.gres:
                line = f"NodeName={node.name} Name={gres.name}"
                if gres.type:
                    line += f" Type={gres.type}"
                if gres.name == "gpu":
                    line += " File=" + ",".join(str(p) for p in self._gpu_files(node))
                else:
                    line += f" Count={gres.count}"
                lines.append(line)
        return "\n".join(lines) + "\n"

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
            for dev in self._gpu_files(node):
                dev.unlink(missing_ok=True)
                dev.symlink_to("/dev/null")
        files = {
            self.conf_path: self._render_slurm_conf(),
            self.conf_dir / "gres.conf": self._render_gres_conf(),
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
        self._ctld = ManagedProcess(
            "slurmctld",
            ["slurmctld", "-D", "-i", "-f", str(self.conf_path)],
            console,
            env=env,
            cwd=self.root,
        ).start()
        self._ctld.wait_ready(self._ctld_answers, timeout=timeout)
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

    def __enter__(self) -> LocalSlurmCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
