"""User options: the declarative, validated description of what a user asks to run.

``user_options`` arrive from the spawn form or the REST API and are hostile input.  They are
checked here, field by field, against the :class:`~continuum_spawners.sites.Site` and the user's
groups, and turned into a typed :class:`JobRequest`.  Nothing else in the spawner reads raw user
options; job scripts and scheduler commands are built from a ``JobRequest`` only.

Besides resources, a request may name the data it is about to read: ``data_sites`` (site
registry names holding replicas, e.g. from the catalogue's *Start near the data*), ``datasets``
(catalogue entry ids, only shown) and ``transfer`` (the user accepts a site without a replica).
A :data:`SOONEST` request then follows the rule of :mod:`~continuum_spawners.locality`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import locality
from .locality import admissible, no_replica_message
from .sites import NAME, Partition, Site, SiteRegistry, format_walltime, parse_walltime

FIELDS = (
    "site",
    "partition",
    "cores",
    "memory_gb",
    "gpus",
    "walltime",
    "environment",
    "data_sites",
    "datasets",
    "transfer",
)
#: the fields about data (saved only when set, so older saved requests read back unchanged)
LOCALITY_FIELDS = ("data_sites", "datasets", "transfer")
#: pseudo-site: start on the user's site and partition with the earliest expected start
SOONEST = "soonest"
DEFAULT_MEMORY_GB = 2
_HOURS_MINUTES = re.compile(r"^(\d{1,4}):([0-5]\d)$")


class OptionsError(ValueError):
    """User options were refused.

    Attributes
    ----------
    status
        The HTTP status to answer with: 400 for malformed values, 403 for forbidden choices.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class JobRequest:
    """Validated resources of one server job.

    ``site_entry`` and ``partition_entry`` are the registry's objects the request was validated
    against (the site as the user may use it: only their partitions), carried so that nothing
    downstream looks them up again; they are neither saved (:meth:`values`) nor compared.  A
    request read back from a server's saved state, and a :data:`SOONEST` one, has none.
    """

    site: str
    partition: str
    cores: int
    memory_gb: int
    gpus: int
    walltime_minutes: int
    # "" (saved by earlier versions) means the site's default environment
    environment: str = ""
    #: sites holding the data to be read (registry names), catalogue ids of that data, and
    #: whether a site without a replica is acceptable (see continuum_spawners.locality)
    data_sites: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    transfer: bool = False
    site_entry: Site | None = field(default=None, compare=False, repr=False)
    partition_entry: Partition | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # values read back from JSON (saved state) carry lists: keep the request hashable
        for name in ("data_sites", "datasets"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def values(self) -> dict[str, Any]:
        """The validated values, as a server's state saves them (``JobRequest(**values)``);
        the data fields only when set."""
        values = {name: getattr(self, name) for name in VALUES}
        for name in LOCALITY_FIELDS:
            if not values[name]:
                del values[name]
            elif isinstance(values[name], tuple):
                values[name] = list(values[name])
        return values

    def as_user_options(self) -> dict[str, Any]:
        """The canonical ``user_options`` form (what the REST API accepts)."""
        options = self.values()
        options["walltime"] = format_walltime(options.pop("walltime_minutes"))
        return options


#: the fields of a :class:`JobRequest` that are its values (the rest are registry objects)
VALUES = tuple(f.name for f in fields(JobRequest) if f.compare)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise OptionsError(f"{name} must be a whole number")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value.strip(" \t")):
        value = int(value.strip(" \t"))
    if not isinstance(value, int):
        raise OptionsError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise OptionsError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _walltime(value: Any, partition: Partition) -> int:
    limit = partition.max_walltime_minutes
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    elif isinstance(value, str):
        text = value.strip()
        match = _HOURS_MINUTES.match(text)
        try:
            if match:
                minutes = int(match.group(1)) * 60 + int(match.group(2))
            else:
                minutes = parse_walltime(text)
        except ValueError:
            raise OptionsError(
                f"walltime must look like H:MM (for example 1:30), not {value[:20]!r}"
            ) from None
    else:
        raise OptionsError("walltime must be H:MM or a number of minutes")
    if not 1 <= minutes <= limit:
        raise OptionsError(
            f"walltime must be between 0:01 and {format_walltime(limit)} "
            f"on partition {partition.name}"
        )
    return minutes


def validate_options(
    options: Mapping[str, Any],
    registry: SiteRegistry,
    user_groups: Iterable[str],
    unavailable: Mapping[str, str] | None = None,
) -> JobRequest:
    """Check ``options`` and build the :class:`JobRequest` they describe.

    Missing fields take the defaults of the site's default partition; with no site at all, the
    first site the user may use is taken (with ``data_sites``: as for :data:`SOONEST`).

    Parameters
    ----------
    unavailable
        Sites the user's groups allow but where they have no account: name → the message
        saying so (:meth:`~continuum_spawners.accounts.AccountResolver.unavailable`).

    Raises
    ------
    OptionsError
        400 for unknown fields, wrong types and out-of-range values; 403 for a site the user
        may not use or has no account at.
    """
    if not isinstance(options, Mapping):
        raise OptionsError("user options must be an object")
    unknown = sorted(str(key)[:40] for key in options if key not in FIELDS)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    groups = set(user_groups)
    unavailable = unavailable or {}
    data = data_fields(options, registry)
    # data named without a site: the data rule picks it (never the first site regardless)
    if options.get("site") == SOONEST or (options.get("site") is None and data["data_sites"]):
        return _soonest_request(options, registry, groups, unavailable, data)
    site = _pick_site(options.get("site"), registry, groups, unavailable)
    partition = _pick_partition(options.get("partition"), site, registry)
    environment = _pick_environment(options.get("environment"), site)
    memory_default = min(DEFAULT_MEMORY_GB, partition.max_memory_gb)
    return JobRequest(
        site=site.name,
        partition=partition.name,
        cores=_integer("cores", options.get("cores", 1), 1, partition.max_cores),
        memory_gb=_integer(
            "memory_gb", options.get("memory_gb", memory_default), 1, partition.max_memory_gb
        ),
        gpus=_integer("gpus", options.get("gpus", 0), 0, partition.max_gpus),
        walltime_minutes=_walltime(
            options.get("walltime", partition.default_walltime_minutes), partition
        ),
        environment=environment,
        site_entry=site,
        partition_entry=partition,
        **data,
    )


def data_fields(options: Mapping[str, Any], registry: SiteRegistry) -> dict[str, Any]:
    """The validated data fields of ``options`` (:func:`~continuum_spawners.locality.
    data_fields`, sites checked against ``registry``); 400 with the reason otherwise."""
    try:
        return locality.data_fields(options, lambda name: registry.get(name) is not None)
    except locality.DataFieldError as exc:
        raise OptionsError(str(exc)) from None


def _soonest_request(
    options: Mapping[str, Any],
    registry: SiteRegistry,
    groups: set[str],
    unavailable: Mapping[str, str],
    data: Mapping[str, Any],
) -> JobRequest:
    if options.get("partition") not in (None, ""):
        raise OptionsError(f"with site {SOONEST!r} the partition is chosen for you; leave it out")
    sites = _usable(registry, groups, unavailable)
    partitions = [p for site in sites for p in site.partitions]
    if not partitions:
        raise OptionsError(_no_site_message(unavailable), status=403)
    longest = max(partitions, key=lambda p: p.max_walltime_minutes)
    request = JobRequest(
        site=SOONEST,
        partition="",
        cores=_integer("cores", options.get("cores", 1), 1, max(p.max_cores for p in partitions)),
        memory_gb=_integer(
            "memory_gb",
            options.get("memory_gb", DEFAULT_MEMORY_GB),
            1,
            max(p.max_memory_gb for p in partitions),
        ),
        gpus=_integer("gpus", options.get("gpus", 0), 0, max(p.max_gpus for p in partitions)),
        walltime_minutes=_walltime(options.get("walltime", 60), longest),
        environment=_soonest_environment(options.get("environment"), sites),
        **data,
    )
    fitting = candidates(request, registry, groups, unavailable)
    if not fitting:
        raise OptionsError(
            f"none of your sites has a partition for {request.cores} cores, "
            f"{request.memory_gb} GB, {request.gpus} GPUs and "
            f"{format_walltime(request.walltime_minutes)} h"
        )
    if not admissible({c.site for c in fitting}, request.data_sites, request.transfer):
        raise OptionsError(no_replica_message(request.data_sites))
    return request


def _soonest_environment(value: Any, sites: Iterable[Site]) -> str:
    if value in (None, ""):
        return ""
    offered = {e.name for site in sites for e in site.environments}
    if not isinstance(value, str) or value not in offered:
        raise OptionsError(
            "none of your sites offers that environment; choose one of: "
            + ", ".join(sorted(offered))
        )
    return value


def candidates(
    request: JobRequest,
    registry: SiteRegistry,
    user_groups: Iterable[str],
    unavailable: Mapping[str, str] | None = None,
) -> list[JobRequest]:
    """Concrete requests for a :data:`SOONEST` request: every partition of the user's sites that
    fits it (and offers its environment, if one is named), in registry order; sites named in
    ``unavailable`` (no account there) are left out."""
    return [
        replace(
            request,
            site=site.name,
            partition=part.name,
            environment=request.environment or site.default_environment.name,
            site_entry=site,
            partition_entry=part,
        )
        for site in _usable(registry, set(user_groups), unavailable or {})
        if not request.environment or site.environment(request.environment)
        for part in site.partitions
        if request.cores <= part.max_cores
        and request.memory_gb <= part.max_memory_gb
        and request.gpus <= part.max_gpus
        and request.walltime_minutes <= part.max_walltime_minutes
    ]


def _usable(registry: SiteRegistry, groups: set[str], unavailable: Mapping[str, str]) -> list[Site]:
    """The sites the user may use (their partitions only) and has an account at."""
    return [site for site in registry.for_groups(groups) if site.name not in unavailable]


def _no_site_message(unavailable: Mapping[str, str]) -> str:
    if unavailable:
        return "; ".join(unavailable.values())
    return "your groups give you access to no site; ask your VO manager for membership"


def _pick_site(
    value: Any, registry: SiteRegistry, groups: set[str], unavailable: Mapping[str, str]
) -> Site:
    """The site named ``value`` as the user may use it (their partitions only)."""
    allowed = {site.name: site for site in registry.for_groups(groups)}
    if value is None:
        usable = _usable(registry, groups, unavailable)
        if not usable:
            raise OptionsError(_no_site_message(unavailable), status=403)
        return usable[0]
    if not isinstance(value, str) or not re.match(NAME, value):
        raise OptionsError("site must be a site name")
    if registry.get(value) is None:
        raise OptionsError(f"unknown site {value!r}")
    if value not in allowed:
        raise OptionsError(f"you are not allowed to use site {value!r}", status=403)
    if value in unavailable:
        raise OptionsError(unavailable[value], status=403)
    return allowed[value]


def _pick_partition(value: Any, site: Site, registry: SiteRegistry) -> Partition:
    if value is None:
        return site.default_partition
    if not isinstance(value, str):
        raise OptionsError("partition must be a partition name")
    partition = site.partition(value)
    if partition is None:
        full = registry.get(site.name)
        if full is not None and full.partition(value) is not None:
            raise OptionsError(
                f"you are not allowed to use partition {value!r} of site {site.name!r}",
                status=403,
            )
        names = ", ".join(p.name for p in site.partitions)
        raise OptionsError(
            f"site {site.name!r} has no partition {value[:64]!r}; choose one of: {names}"
        )
    return partition


def _pick_environment(value: Any, site: Site) -> str:
    if value in (None, ""):
        return site.default_environment.name
    if not isinstance(value, str) or site.environment(value) is None:
        names = ", ".join(e.name for e in site.environments)
        shown = value[:64] if isinstance(value, str) else value
        raise OptionsError(
            f"site {site.name!r} offers no environment {shown!r}; choose one of: {names}"
        )
    return value


def options_from_form(form: Mapping[str, list[str]]) -> dict[str, Any]:
    """Turn spawn-form data (lists of strings) into ``user_options``.

    Only coerces shapes; :func:`validate_options` does the checking.  The form's combined
    ``target`` field (``site/partition``) becomes ``site`` and ``partition``.
    """
    options: dict[str, Any] = {}
    for key, values in form.items():
        if not values:
            continue
        value = values[0]
        if key == "target":
            site, sep, partition = value.partition("/")
            if not sep:
                raise OptionsError("choose a site and partition")
            options["site"], options["partition"] = site, partition
        elif key in ("site", "partition", "walltime", "environment", "transfer"):
            options[key] = value
        elif key in ("data_sites", "datasets"):
            options[key] = list(values)  # repeated fields (hidden inputs, query arguments)
        elif key in ("cores", "memory_gb", "gpus"):
            options[key] = value.strip()
        else:
            options[key] = value  # refused by validate_options with a clear message
    return options
