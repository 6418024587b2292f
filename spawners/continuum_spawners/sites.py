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

A site reached through its login node says so in ``connection`` (see
:mod:`continuum_spawners.schedulers.ssh`)::

        connection:
          transport: ssh
          host: login.gamma.example.org
          port: 22                                   # optional, default 22
          identity_file: /etc/continuum-hub/ssh/id_ed25519
          known_hosts: /etc/continuum-hub/ssh/known_hosts
          service_user: jupyterhub                   # optional: account for status queries
          env: {SLURM_CONF: /etc/slurm/slurm.conf}   # set on the login node for each command

and a site reached through its slurmrestd (see :mod:`continuum_spawners.schedulers.slurmrest`)::

        connection:
          transport: slurmrestd
          url: https://rest.gamma.example.org:6820
          token_file: /etc/continuum-hub/slurmrestd.jwt   # 0600: SlurmUser's token
          service_user: slurm                             # optional: the token's account

A site whose POSIX accounts are not the hub usernames says how to find them (policies
``pattern``, ``map``, ``pool``; see :mod:`continuum_spawners.accounts`)::

        user_accounts: {policy: map, file: /etc/continuum-hub/accounts-gamma.yaml}

Beside ``sites``, a top-level ``budgets`` list sets monthly limits of users and VOs (see
:mod:`continuum_spawners.budgets`); a site's ``power`` feeds :mod:`continuum_spawners.impact`.

Errors of :meth:`SiteRegistry.from_file` name the file, line and column
(``sites.yaml:14:9: at sites/0/partitions/1/max_cores: 0 is less than the minimum of 1``).

The site model — :class:`~.site_types.Site` and the value types it is made of (partitions,
environments, power data, Lmod, SSH, REST) — is in :mod:`.site_types`, re-exported here; this
module loads and validates the registry.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema

from . import impact
from .accounts import PolicyError, build_policy
from .budgets import BudgetConfigError, BudgetRule, build_rules
from .registry_schema import (
    NAME,
    SCHEMA,
    Where,
    position,
    read_yaml,
    schema_problem,
)
from .site_types import (
    DEFAULT_ENVIRONMENT,
    Environment,
    Lmod,
    Partition,
    Power,
    RestConnection,
    Site,
    SSHConnection,
    StrayField,
    build_connection,
    format_walltime,
    parse_walltime,
)

__all__ = [
    "DEFAULT_ENVIRONMENT",
    "NAME",
    "SCHEMA",
    "Environment",
    "Lmod",
    "Partition",
    "Power",
    "RegistryError",
    "RestConnection",
    "SSHConnection",
    "Site",
    "SiteRegistry",
    "format_walltime",
    "load_registry",
    "parse_walltime",
]


class RegistryError(ValueError):
    """The registry file is unreadable or invalid; the message says where.

    Parameters
    ----------
    message
        What is wrong, starting with its place in the document (``at sites/0/name: ...``).
    where
        Keys and indexes from the document's root to the offending value, for
        :meth:`SiteRegistry.from_file` to turn into a line and column.
    at_key
        Whether the problem is the key ``where[-1]`` itself (an unknown field) rather than its
        value.
    """

    def __init__(self, message: str, where: Where | None = None, at_key: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.at_key = at_key


class SiteRegistry:
    """The loaded, validated registry: sites by name, in file order."""

    def __init__(self, sites: Iterable[Site], budgets: Iterable[BudgetRule] = ()) -> None:
        #: the monthly budgets of users and VOs (:mod:`continuum_spawners.budgets`)
        self.budgets = tuple(budgets)
        self.sites: dict[str, Site] = {}
        rse_sites: dict[str, str] = {}
        for site in sites:
            if site.name in self.sites:
                raise RegistryError(f"site {site.name!r} is defined twice")
            self.sites[site.name] = site
            for rse in site.rses:
                if rse_sites.setdefault(rse, site.name) != site.name:
                    raise RegistryError(
                        f"at sites/{site.name}/rse: {rse} is already at site {rse_sites[rse]}"
                    )

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.sites.values())

    def get(self, name: str) -> Site | None:
        return self.sites.get(name)

    def for_groups(self, user_groups: Iterable[str]) -> list[Site]:
        """The sites a member of ``user_groups`` may use (with the partitions they may use)."""
        groups = set(user_groups)
        return [
            replace(site, partitions=tuple(site.partitions_for(groups)))
            for site in self
            if site.allows(groups) and site.partitions_for(groups)
        ]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None):
        """Load and validate a registry file.

        Raises
        ------
        RegistryError
            With the file name, line and column (``FILE:LINE:COLUMN: at PATH: problem``) of the
            first problem; the line and column are left out where there is no such place.
        """
        path = Path(path)
        text, data = read_yaml(path, RegistryError, "site registry")
        try:
            return cls.from_dict(data, environ)
        except RegistryError as exc:
            where = position(path, text, exc.where, exc.at_key)
            raise RegistryError(f"{where}: {exc}", exc.where, exc.at_key) from exc

    @classmethod
    def from_dict(cls, data: Any, environ: Mapping[str, str] | None = None) -> SiteRegistry:
        """Validate a parsed registry document and build the registry from it."""
        errors = sorted(
            jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: e.path
        )
        if errors:
            message, where, at_key = schema_problem(errors[0])
            raise RegistryError(message, where, at_key=at_key)
        environ = os.environ if environ is None else environ
        try:
            budgets = build_rules(data.get("budgets", ()))
        except BudgetConfigError as exc:
            raise RegistryError(str(exc), exc.where) from None
        sites = (_build_site(i, entry, environ) for i, entry in enumerate(data["sites"]))
        return cls(sites, budgets)


# path → (when its modification time was last looked at, that time, the registry loaded)
_loaded: dict[str, tuple[float, float, SiteRegistry]] = {}


def load_registry(path: str, max_age: float = 0.0) -> SiteRegistry:
    """The registry in ``path``, one for the whole process, loaded again when the file changed
    (its modification time, looked at when the last look is ``max_age`` seconds old or more;
    0: at every call).  An invalid file raises :class:`RegistryError` as ``from_file`` does."""
    now = time.monotonic()
    cached = _loaded.get(path)
    if cached is not None and now - cached[0] < max_age:
        return cached[2]
    mtime = os.stat(path).st_mtime
    registry = cached[2] if cached is not None and cached[1] == mtime else None
    if registry is None:
        registry = SiteRegistry.from_file(path)
    _loaded[path] = (now, mtime, registry)
    return registry


def _expand(value: str, environ: Mapping[str, str], where: Where) -> str:
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            text = "/".join(str(p) for p in where)
            raise RegistryError(f"at {text}: environment variable {name} is not set", where)
        return environ[name]

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lookup, value)


def _build_partition(site: str, where: Where, part: dict[str, Any]) -> Partition:
    max_wall = parse_walltime(part["max_walltime"])
    default_wall = parse_walltime(part.get("default_walltime", "01:00:00"))
    at = f"at sites/{site}/partitions/{part['name']}"
    if default_wall > max_wall:
        raise RegistryError(
            f"{at}: default_walltime exceeds max_walltime", (*where, "default_walltime")
        )
    if part.get("gpu_type") and not part.get("max_gpus"):
        raise RegistryError(f"{at}: gpu_type needs max_gpus", (*where, "gpu_type"))
    return Partition(
        name=part["name"],
        display_name=part.get("display_name", ""),
        default=part.get("default", False),
        max_cores=part["max_cores"],
        max_memory_gb=part["max_memory_gb"],
        max_gpus=part.get("max_gpus", 0),
        gpu_type=part.get("gpu_type"),
        max_walltime_minutes=max_wall,
        default_walltime_minutes=default_wall,
        groups=None if "access" not in part else frozenset(part["access"].get("groups", [])),
    )


def _build_power(where: Where, power: dict[str, Any] | None) -> Power | None:
    """A site's ``power`` entry, its country and CPU model checked against codecarbon's data."""
    if power is None:
        return None
    country = power.get("country")
    if country is not None and impact.grid_intensity(country) is None:
        raise RegistryError(
            f"at {'/'.join(map(str, where))}/country: {country} is not in codecarbon's data",
            (*where, "country"),
        )
    cpu = power.get("cpu_model")
    if cpu is not None and impact.cpu_tdp(cpu) is None:
        raise RegistryError(
            f"at {'/'.join(map(str, where))}/cpu_model: {cpu!r} is not in codecarbon's CPU list",
            (*where, "cpu_model"),
        )
    return Power(**power)


def _build_site(index: int, entry: dict[str, Any], environ: Mapping[str, str]) -> Site:
    name = entry["name"]
    where: Where = ("sites", index)
    partitions = [
        _build_partition(name, (*where, "partitions", i), part)
        for i, part in enumerate(entry["partitions"])
    ]
    if len({p.name for p in partitions}) != len(partitions):
        raise RegistryError(
            f"at sites/{name}/partitions: a partition is listed twice", (*where, "partitions")
        )
    if sum(p.default for p in partitions) > 1:
        raise RegistryError(
            f"at sites/{name}/partitions: more than one default partition", (*where, "partitions")
        )
    connection = entry.get("connection", {})
    env = {
        key: _expand(value, environ, (*where, "connection", "env", key))
        for key, value in connection.get("env", {}).items()
    }
    access = entry.get("access")
    environments = tuple(
        Environment(
            name=env["name"],
            display_name=env.get("display_name", ""),
            modules=tuple(env.get("modules", ())),
            launcher=env.get("launcher"),
            default=env.get("default", False),
        )
        for env in entry.get("environments", ())
    ) or (DEFAULT_ENVIRONMENT,)
    if len({e.name for e in environments}) != len(environments):
        raise RegistryError(
            f"at sites/{name}/environments: an environment is listed twice",
            (*where, "environments"),
        )
    if sum(e.default for e in environments) > 1:
        raise RegistryError(
            f"at sites/{name}/environments: more than one default environment",
            (*where, "environments"),
        )
    power = _build_power((*where, "power"), entry.get("power"))
    try:
        ssh, rest = build_connection(connection)
    except StrayField as exc:
        at = (*where, "connection", exc.key)
        raise RegistryError(f"at sites/{name}/connection: {exc}", at, True) from None
    user_accounts = None
    if "user_accounts" in entry:
        try:
            user_accounts = build_policy(entry["user_accounts"])
        except PolicyError as exc:
            at = (*where, "user_accounts")
            where_exc = at if exc.field is None else (*at, exc.field)
            raise RegistryError(f"at sites/{name}/user_accounts: {exc}", where_exc) from None
    return Site(
        name=name,
        scheduler=entry["scheduler"],
        partitions=tuple(partitions),
        display_name=entry.get("display_name", ""),
        description=entry.get("description", ""),
        transport=connection.get("transport", "local"),
        env=env,
        ssh=ssh,
        rest=rest,
        node_address=entry.get("node_address"),
        bind_address=entry.get("bind_address"),
        groups=None if access is None else frozenset(access.get("groups", [])),
        account=entry.get("account"),
        environments=environments,
        power=power,
        user_accounts=user_accounts,
        lmod=Lmod.from_entry(entry["lmod"]) if "lmod" in entry else None,
        rses=tuple(entry.get("rse", ())),
        reservations=entry.get("reservations", True),
    )
