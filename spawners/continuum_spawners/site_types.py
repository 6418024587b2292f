"""The site model: :class:`Site` and the value types it is made of (partitions, environments,
power data, Lmod, and how a site is reached: SSH, slurmrestd).

Built by :mod:`continuum_spawners.sites` (the registry: loading and validation) from the
validated YAML, and re-exported there; plain frozen dataclasses with no I/O, so every module may
import them.  :func:`build_connection` reads a site's ``connection`` (its schema already
checked) into its transport's settings and refuses a field of another transport than the one
named (most likely a forgotten ``transport:`` line: running locally instead would be a
surprise).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .registry_schema import REST_FIELDS, SSH_FIELDS, WALLTIME

if TYPE_CHECKING:
    from .accounts import AccountPolicy

__all__ = [
    "DEFAULT_ENVIRONMENT",
    "Environment",
    "Lmod",
    "Partition",
    "Power",
    "RestConnection",
    "SSHConnection",
    "Site",
    "StrayField",
    "build_connection",
    "format_walltime",
    "parse_walltime",
]


def parse_walltime(text: str) -> int:
    """Minutes in a Slurm-style walltime ``[D-]HH:MM[:SS]`` (seconds round up)."""
    match = re.match(WALLTIME, text)
    if not match:
        raise ValueError(f"walltime {text!r} is not [D-]HH:MM[:SS]")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def format_walltime(minutes: int) -> str:
    """``minutes`` as ``H:MM`` for people (``90`` → ``1:30``)."""
    return f"{minutes // 60}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Partition:
    """One partition (queue) of a site and its per-job limits."""

    name: str
    max_cores: int
    max_memory_gb: int
    max_walltime_minutes: int
    default_walltime_minutes: int
    max_gpus: int = 0
    gpu_type: str | None = None
    display_name: str = ""
    default: bool = False
    groups: frozenset[str] | None = None

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def allows(self, user_groups: Iterable[str]) -> bool:
        """Whether a member of ``user_groups`` may use this partition (no rule: all of the
        site's users)."""
        return self.groups is None or not self.groups.isdisjoint(user_groups)


@dataclass(frozen=True)
class Environment:
    """A software environment a site offers: modules to load and the server launcher to run."""

    name: str
    display_name: str = ""
    modules: tuple[str, ...] = ()
    launcher: str | None = None
    default: bool = False

    @property
    def label(self) -> str:
        return self.display_name or self.name


#: what a site without an ``environments`` list offers: the hub's own Python environment
DEFAULT_ENVIRONMENT = Environment("default", "Default (the hub's Python environment)")


@dataclass(frozen=True)
class Power:
    """Power data of a site (registry ``power``), for the impact model of
    :func:`continuum_spawners.impact.model_for`: numbers given win, the rest comes from the
    ``country`` and ``cpu_model`` (with ``cpu_cores``) in codecarbon's data or the model's
    defaults."""

    watts_per_core: float | None = None
    pue: float | None = None
    grid_gco2e_per_kwh: float | None = None
    watts_per_gpu: float = 0.0
    memory_watts_per_gb: float | None = None
    #: ISO 3166 alpha-3 code of where the site draws its power, for the grid's intensity
    country: str | None = None
    #: the CPU as codecarbon's ``cpu_power.csv`` names it, and its cores per CPU
    cpu_model: str | None = None
    cpu_cores: int | None = None


@dataclass(frozen=True)
class Lmod:
    """Lmod at a site (``lmod:``): its module trees and where Lmod is installed there."""

    modulepath: tuple[str, ...]
    lmod_dir: str = "/usr/share/lmod/lmod"

    @classmethod
    def from_entry(cls, lmod: dict[str, Any]) -> Lmod:
        return cls(**{**lmod, "modulepath": tuple(lmod["modulepath"])})


@dataclass(frozen=True)
class SSHConnection:
    """How to reach a site's login node over SSH (``connection.transport: ssh``)."""

    host: str
    identity_file: str
    known_hosts: str
    port: int = 22
    service_user: str | None = None
    #: the one account ssh logs in as, which runs users' commands through ``sudo -u``
    login_user: str | None = None


@dataclass(frozen=True)
class RestConnection:
    """How to reach a site's slurmrestd (``connection.transport: slurmrestd``).

    ``token_file`` holds a JSON Web Token (``scontrol token``'s ``SLURM_JWT=…`` line or the
    bare token), mode 0600; ``service_user`` is the account it was minted for (commands run as
    users name them in ``X-SLURM-USER-NAME``, which slurmctld allows only to SlurmUser's and
    root's tokens).
    """

    url: str
    token_file: str
    service_user: str | None = None


@dataclass(frozen=True)
class Site:
    """One batch site of the continuum."""

    name: str
    scheduler: str
    partitions: tuple[Partition, ...]
    display_name: str = ""
    description: str = ""
    transport: str = "local"
    env: Mapping[str, str] = field(default_factory=dict)
    ssh: SSHConnection | None = None
    rest: RestConnection | None = None
    node_address: str | None = None
    bind_address: str | None = None
    groups: frozenset[str] | None = None
    account: str | None = None
    environments: tuple[Environment, ...] = (DEFAULT_ENVIRONMENT,)
    power: Power | None = None
    #: how hub users map to the site's POSIX accounts (``None``: the hub's default policy)
    user_accounts: AccountPolicy | None = None
    #: Lmod's module trees at the site (``None``: no Lmod), for the software catalogue
    lmod: Lmod | None = None
    #: Rucio storage elements at this site (registry field ``rse``)
    rses: tuple[str, ...] = ()
    #: whether the hub may create Slurm reservations here (workshop events; registry field
    #: ``reservations``, default true)
    reservations: bool = True

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def environment(self, name: str) -> Environment | None:
        """The environment called ``name``, or ``None``."""
        return next((e for e in self.environments if e.name == name), None)

    @property
    def default_environment(self) -> Environment:
        return next((e for e in self.environments if e.default), self.environments[0])

    def partitions_for(self, user_groups: Iterable[str]) -> list[Partition]:
        """The partitions a member of ``user_groups`` may use."""
        groups = set(user_groups)
        return [p for p in self.partitions if p.allows(groups)]

    def partition(self, name: str) -> Partition | None:
        """The partition called ``name``, or ``None``."""
        return next((p for p in self.partitions if p.name == name), None)

    @property
    def default_partition(self) -> Partition:
        return next((p for p in self.partitions if p.default), self.partitions[0])

    def allows(self, user_groups: Iterable[str]) -> bool:
        """Whether a member of ``user_groups`` may use this site (no rule: everyone)."""
        return self.groups is None or not self.groups.isdisjoint(user_groups)


class StrayField(ValueError):
    """A ``connection`` field that belongs to another transport (``key``: the field)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check_fields(connection: dict[str, Any]) -> None:
    transport = connection.get("transport", "local")
    allowed = {"ssh": SSH_FIELDS, "slurmrestd": REST_FIELDS}.get(transport, ())
    for key in connection:
        if key in (*SSH_FIELDS, *REST_FIELDS) and key not in allowed:
            needs = " or ".join(
                kind
                for kind, fields in (("ssh", SSH_FIELDS), ("slurmrestd", REST_FIELDS))
                if key in fields
            )
            raise StrayField(key, f"{key} needs transport: {needs}")


def build_connection(
    connection: dict[str, Any],
) -> tuple[SSHConnection | None, RestConnection | None]:
    """The SSH and REST settings of a validated ``connection`` (``None`` where not that kind).

    Raises
    ------
    StrayField
        For a field of another transport than the one named.
    """
    _check_fields(connection)
    transport = connection.get("transport", "local")
    ssh = rest = None
    if transport == "ssh":
        ssh = SSHConnection(
            host=connection["host"],
            port=connection.get("port", 22),
            identity_file=connection["identity_file"],
            known_hosts=connection["known_hosts"],
            service_user=connection.get("service_user"),
            login_user=connection.get("login_user"),
        )
    elif transport == "slurmrestd":
        rest = RestConnection(
            url=connection["url"],
            token_file=connection["token_file"],
            service_user=connection.get("service_user"),
        )
    return ssh, rest
