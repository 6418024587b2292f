"""The site registry: which batch sites exist, what they offer and who may use them.

The registry is one YAML file, validated against :data:`SCHEMA` as a whole before anything is
built from it, so a mistake never half-loads.  It is the single source of truth for the spawn
form, the server-side checks of user options and the job submission.

Example::

    sites:
      - name: alpha
        display_name: Alpha HPC centre
        scheduler: slurm
        connection:
          transport: local
          env: {SLURM_CONF: /etc/slurm-alpha/slurm.conf}
        access: {groups: [vo.hep.example]}
        partitions:
          - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8,
             max_walltime: "08:00:00", default_walltime: "01:00:00"}

String values under ``connection.env`` may name environment variables of the hub as
``${NAME}`` (e.g. a state directory known only at start-up).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

NAME = r"^[a-z][a-z0-9-]{0,30}$"
WALLTIME = r"^(?:(\d+)-)?(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sites"],
    "properties": {
        "sites": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "scheduler", "partitions"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME},
                    "display_name": {"type": "string", "maxLength": 100},
                    "description": {"type": "string", "maxLength": 500},
                    "scheduler": {"enum": ["slurm"]},
                    "connection": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "transport": {"enum": ["local"]},
                            "env": {
                                "type": "object",
                                "propertyNames": {"pattern": ENV_NAME},
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                    "node_address": {"type": "string", "pattern": r"^[A-Za-z0-9.:-]+$"},
                    "bind_address": {"type": "string", "pattern": r"^[0-9.:]+$"},
                    "access": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "groups": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "account": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"},
                    "partitions": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "max_cores", "max_memory_gb", "max_walltime"],
                            "properties": {
                                "name": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
                                "display_name": {"type": "string", "maxLength": 100},
                                "default": {"type": "boolean"},
                                "max_cores": {"type": "integer", "minimum": 1},
                                "max_memory_gb": {"type": "integer", "minimum": 1},
                                "max_gpus": {"type": "integer", "minimum": 0},
                                "gpu_type": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"},
                                "max_walltime": {"type": "string", "pattern": WALLTIME},
                                "default_walltime": {"type": "string", "pattern": WALLTIME},
                            },
                        },
                    },
                },
            },
        }
    },
}


class RegistryError(ValueError):
    """The registry file is unreadable or invalid; the message says where."""


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

    @property
    def label(self) -> str:
        return self.display_name or self.name


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
    node_address: str | None = None
    bind_address: str | None = None
    groups: frozenset[str] | None = None
    account: str | None = None

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def partition(self, name: str) -> Partition | None:
        """The partition called ``name``, or ``None``."""
        return next((p for p in self.partitions if p.name == name), None)

    @property
    def default_partition(self) -> Partition:
        return next((p for p in self.partitions if p.default), self.partitions[0])

    def allows(self, user_groups: Iterable[str]) -> bool:
        """Whether a member of ``user_groups`` may use this site (no rule: everyone)."""
        return self.groups is None or not self.groups.isdisjoint(user_groups)


class SiteRegistry:
    """The loaded, validated registry: sites by name, in file order."""

    def __init__(self, sites: Iterable[Site]) -> None:
        self.sites: dict[str, Site] = {}
        for site in sites:
            if site.name in self.sites:
                raise RegistryError(f"site {site.name!r} is defined twice")
            self.sites[site.name] = site

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.sites.values())

    def get(self, name: str) -> Site | None:
        return self.sites.get(name)

    def for_groups(self, user_groups: Iterable[str]) -> list[Site]:
        """The sites a member of ``user_groups`` may use."""
        groups = set(user_groups)
        return [site for site in self if site.allows(groups)]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None):
        """Load and validate a registry file.

        Raises
        ------
        RegistryError
            With the file name and the location of the first problem.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise RegistryError(f"cannot read site registry {path}: {exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
        try:
            return cls.from_dict(data, environ)
        except RegistryError as exc:
            raise RegistryError(f"{path}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Any, environ: Mapping[str, str] | None = None) -> SiteRegistry:
        """Validate a parsed registry document and build the registry from it."""
        errors = sorted(
            jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: e.path
        )
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
            raise RegistryError(f"at {where}: {first.message}")
        environ = os.environ if environ is None else environ
        return cls(_build_site(entry, environ) for entry in data["sites"])


def _expand(value: str, environ: Mapping[str, str], where: str) -> str:
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise RegistryError(f"at {where}: environment variable {name} is not set")
        return environ[name]

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lookup, value)


def _build_site(entry: dict[str, Any], environ: Mapping[str, str]) -> Site:
    name = entry["name"]
    partitions = []
    for part in entry["partitions"]:
        max_wall = parse_walltime(part["max_walltime"])
        default_wall = parse_walltime(part.get("default_walltime", "01:00:00"))
        if default_wall > max_wall:
            raise RegistryError(
                f"at sites/{name}/partitions/{part['name']}: default_walltime exceeds max_walltime"
            )
        if part.get("gpu_type") and not part.get("max_gpus"):
            raise RegistryError(
                f"at sites/{name}/partitions/{part['name']}: gpu_type needs max_gpus"
            )
        partitions.append(
            Partition(
                name=part["name"],
                display_name=part.get("display_name", ""),
                default=part.get("default", False),
                max_cores=part["max_cores"],
                max_memory_gb=part["max_memory_gb"],
                max_gpus=part.get("max_gpus", 0),
                gpu_type=part.get("gpu_type"),
                max_walltime_minutes=max_wall,
                default_walltime_minutes=default_wall,
            )
        )
    if len({p.name for p in partitions}) != len(partitions):
        raise RegistryError(f"at sites/{name}/partitions: a partition is listed twice")
    if sum(p.default for p in partitions) > 1:
        raise RegistryError(f"at sites/{name}/partitions: more than one default partition")
    connection = entry.get("connection", {})
    env = {
        key: _expand(value, environ, f"sites/{name}/connection/env/{key}")
        for key, value in connection.get("env", {}).items()
    }
    access = entry.get("access")
    return Site(
        name=name,
        scheduler=entry["scheduler"],
        partitions=tuple(partitions),
        display_name=entry.get("display_name", ""),
        description=entry.get("description", ""),
        transport=connection.get("transport", "local"),
        env=env,
        node_address=entry.get("node_address"),
        bind_address=entry.get("bind_address"),
        groups=None if access is None else frozenset(access.get("groups", [])),
        account=entry.get("account"),
    )
