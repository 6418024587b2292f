"""The local demo clusters' spec (``images/slurm/clusters.yaml``): parsing and validation.

Every value that :mod:`.slurm` writes into a ``slurm.conf`` comes from a :class:`ClusterSpec`
built here: names match strict patterns, numbers are integers, times are Slurm time limits, and
any mistake raises :class:`ClusterSpecError` naming the file and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
