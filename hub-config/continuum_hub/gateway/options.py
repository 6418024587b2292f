"""Cluster options from the site registry, and per-user limits from the user's groups.

The options a user sees (``Gateway().cluster_options()``) are dask-gateway ``Options`` built for
that user: the sites and partitions their groups may use, worker cores/memory/GPUs bounded by the
largest partition offered, the site's software environments, adaptive bounds, and an idle
timeout up to the gateway's.  dask-gateway validates each field (unknown fields, types, bounds);
:func:`resolve` then checks what depends on the choice of site and partition (the partition's
own maxima, GPUs only on GPU partitions) and on the user's :class:`Limits`, and turns the choice
into ``SiteClusterConfig`` overrides.  Every refusal is a ``ValueError`` whose message the user
sees (HTTP 422 from the gateway).  The option ``name`` is the cluster's readable name
(:func:`check_label`); the backend makes one up when it is empty (:func:`cluster_label`).
A cluster on a running workshop event's partition goes into the event's reservation where the
creator's account may use it (:func:`~continuum_hub.workshops.usable.event_reservation`): the
override ``reservation``, never a user option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dask_gateway_server.options import Float, Integer, Options, Select, String
from traitlets import Dict, validate
from traitlets.config import Configurable

from continuum_spawners.sites import Site, SiteRegistry

from ..workshops.usable import EventPartition, event_reservation, usable_sites

#: a Select value meaning "the site's default partition / environment"
DEFAULT = "default"
LIMIT_NAMES = ("max_clusters", "max_workers", "max_cores", "max_gpus")
#: limits on the sum over all of a user's active clusters (their workers; schedulers are bounded
#: by ``max_clusters``); unset: ``max_clusters`` times the per-cluster limit, i.e. no extra bound
TOTAL_NAMES = ("max_total_workers", "max_total_cores", "max_total_gpus")
GIB = 2**30
#: shortest idle timeout a user may choose (minutes): the scheduler checks every quarter of it
MIN_IDLE_MINUTES = 0.25
#: a cluster's readable name (the option ``name``; the gateway's id stays its 32-hex name):
#: the lab panel's regular expression mirrors this one
CLUSTER_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
#: the creator's POSIX account at a site (``None``: none yet)
AccountOf = Callable[[Site], str | None]


@dataclass(frozen=True)
class Limits:
    """What one user may run through the gateway.

    ``max_clusters`` counts the user's active clusters; ``max_workers``, ``max_cores`` and
    ``max_gpus`` apply to each cluster (its workers, the workers' cores and GPUs together; the
    scheduler is not counted); the ``max_total_*`` limits apply to the sum over all the user's
    active clusters (``None``: ``max_clusters`` times the per-cluster limit, see :meth:`total`).
    ``source`` says, for each limit, which group granted it (``"default"`` otherwise).
    """

    max_clusters: int
    max_workers: int
    max_cores: int
    max_gpus: int
    source: Mapping[str, str]
    max_total_workers: int | None = None
    max_total_cores: int | None = None
    max_total_gpus: int | None = None

    def total(self, what: str) -> int:
        """The user's total of ``what`` (``"workers"``, ``"cores"``, ``"gpus"``)."""
        value = getattr(self, f"max_total_{what}")
        return self.max_clusters * getattr(self, f"max_{what}") if value is None else value

    def why(self, name: str) -> str:
        """``"your limit of N <what> (group G)"`` for messages."""
        key = name.removeprefix("max_").removeprefix("total_")
        what = {"gpus": "GPUs"}.get(key, key)
        value = getattr(self, name)
        if name.startswith("max_total_"):
            what, value = f"{what} over all your clusters", self.total(key)
        origin = self.source.get(name, "default")
        granted = "the default" if origin == "default" else f"group {origin}"
        return f"your limit of {value} {what} ({granted})"


class GatewayLimits(Configurable):
    """Per-user limits of the Dask Gateway, from the user's JupyterHub groups (entitlements)."""

    default = Dict(
        {"max_clusters": 2, "max_workers": 4, "max_cores": 8, "max_gpus": 0},
        config=True,
        help="""Limits of users whose groups set none: ``max_clusters`` (active clusters per
        user), ``max_workers``, ``max_cores`` and ``max_gpus`` (per cluster, its workers
        together), and ``max_total_workers``, ``max_total_cores`` and ``max_total_gpus`` (per
        user: the workers of all their active clusters together; schedulers are bounded by
        ``max_clusters``).  Missing keys keep these defaults: 2, 4, 8 and 0; a missing total is
        ``max_clusters`` times the per-cluster limit (no extra bound).""",
    )

    groups = Dict(
        {},
        config=True,
        help="""Limits by JupyterHub group, e.g. ``{"vo.radio.example": {"max_gpus": 2,
        "max_total_gpus": 4}}`` (same names as ``default``).  For each limit a user gets the
        largest value among their groups, or ``default`` when none of their groups sets it.
        Default: no group limits.""",
    )

    @staticmethod
    def _checked(where: str, values: Any) -> dict[str, int]:
        if not isinstance(values, dict):
            raise ValueError(f"{where} must be a mapping of limit names to integers")
        for key, value in values.items():
            if key not in LIMIT_NAMES + TOTAL_NAMES:
                known = LIMIT_NAMES + TOTAL_NAMES
                raise ValueError(f"{where}: unknown limit {key!r} (known: {known})")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{key} must be a non-negative integer")
        return dict(values)

    @validate("default")
    def _validate_default(self, proposal: Any) -> dict[str, int]:
        values = {"max_clusters": 2, "max_workers": 4, "max_cores": 8, "max_gpus": 0}
        values.update(self._checked("GatewayLimits.default", proposal.value))
        return values

    @validate("groups")
    def _validate_groups(self, proposal: Any) -> dict[str, dict[str, int]]:
        return {
            str(group): self._checked(f"GatewayLimits.groups[{group!r}]", values)
            for group, values in proposal.value.items()
        }

    def for_groups(self, user_groups: Iterable[str]) -> Limits:
        """The limits of a member of ``user_groups``."""
        values: dict[str, int | None] = {**dict.fromkeys(TOTAL_NAMES), **self.default}
        source = dict.fromkeys(LIMIT_NAMES + TOTAL_NAMES, "default")
        best: dict[str, int] = {}
        for group in sorted(set(user_groups)):
            for name, value in self.groups.get(group, {}).items():
                if value > best.get(name, -1):
                    best[name] = value
                    source[name] = group
        values.update(best)
        return Limits(**values, source=source)  # type: ignore[arg-type]


def cluster_options(
    registry: SiteRegistry,
    groups: Iterable[str],
    limits: Limits,
    idle_timeout: float = 0,
    down: Mapping[str, str] | None = None,
    account: AccountOf | None = None,
) -> Options:
    """The ``Options`` offered to a member of ``groups`` (sites from the registry).

    ``idle_timeout`` (seconds, the gateway's ``SiteClusterConfig.idle_timeout``; 0: never)
    bounds the field ``idle_timeout_minutes``: users may shut an idle cluster down sooner, not
    later.  No such field when it is 0.  ``down`` (site name → why, from the gateway's probe)
    names the sites that do not answer now: still listed, marked unavailable in the field's
    label (as the spawn form marks them), never the default, and refused by :func:`resolve`.
    ``account`` gives the user's account at the chosen site (for an event's reservation).
    """
    groups, down = set(groups), dict(down or {})
    sites = gateway_sites(registry, groups)
    if not sites:
        return Options(handler=_no_site)
    names = [s.name for s in sites]
    names.sort(key=lambda name: name in down)  # an available site first: the default
    unavailable = [name for name in names if name in down]
    site_label = "Site" + (f" (unavailable now: {', '.join(unavailable)})" if unavailable else "")
    partitions = [p for site in sites for p in site.partitions]
    environments = sorted({e.name for site in sites for e in site.environments})
    max_gpus = max(p.max_gpus for p in partitions)
    fields = [
        Select("site", names, label=site_label),
        Select("partition", [DEFAULT, *sorted({p.name for p in partitions})], label="Partition"),
        Integer("worker_cores", 1, min=1, max=max(p.max_cores for p in partitions),
                label="Cores per worker"),
        # defaults within the largest partition (a workshop event's may be smaller: 1 GB, 30 min)
        Integer("worker_memory_gb", min(2, max(p.max_memory_gb for p in partitions)), min=1,
                max=max(p.max_memory_gb for p in partitions), label="Memory per worker (GB)"),
        Integer("worker_gpus", 0, min=0, max=max_gpus, label="GPUs per worker"),
        Select("environment", [DEFAULT, *environments], label="Software environment"),
        Integer("walltime_minutes", min(60, max(p.max_walltime_minutes for p in partitions)),
                min=1, max=max(p.max_walltime_minutes for p in partitions),
                label="Walltime of each job (minutes)"),
        Integer("adaptive_minimum", 0, min=0, max=limits.max_workers,
                label="Adaptive: minimum workers"),
        Integer("adaptive_maximum", 0, min=0, max=limits.max_workers,
                label="Adaptive: maximum workers (0: scale by hand)"),
        Integer("workers", 0, min=0, max=limits.max_workers,
                label="Workers started with the scheduler"),
        String("name", "", label="Name (empty: made up, like beta-gpu-2)"),
    ]  # fmt: skip
    if idle_timeout > 0:
        most = idle_timeout / 60
        fields.append(Float("idle_timeout_minutes", most, min=MIN_IDLE_MINUTES, max=most,
                            label="Shut down after idle for (minutes)"))  # fmt: skip

    def handler(options: Mapping[str, Any]) -> dict[str, Any]:
        if options["site"] in down:
            raise ValueError(down[options["site"]])
        return resolve(options, registry, groups, limits, account)

    return Options(*fields, handler=handler)


def gateway_sites(registry: SiteRegistry, groups: Iterable[str]) -> list[Site]:
    """The sites a member of ``groups`` may run Dask clusters on, whatever their transport
    (local, ssh, slurmrestd: :mod:`.remote`)."""
    return list(usable_sites(registry, groups))


def _no_site(options: Mapping[str, Any]) -> dict[str, Any]:
    raise ValueError("none of your groups gives access to a site with Dask clusters")


def _site(options: Mapping[str, Any], registry: SiteRegistry, groups: set[str]) -> Site:
    site = next((s for s in gateway_sites(registry, groups) if s.name == options["site"]), None)
    if site is None:
        raise ValueError(f"you may not use site {options['site']!r}")
    return site


def resolve(
    options: Mapping[str, Any],
    registry: SiteRegistry,
    groups: Iterable[str],
    limits: Limits,
    account: AccountOf | None = None,
) -> dict[str, Any]:
    """Check field-validated ``options`` against the chosen partition and the user's limits.

    On a running event's partition, ``reservation`` is the event's where ``account`` (the
    user's account at the site) may run in it; without ``account``: never.

    Returns
    -------
    dict
        Overrides of :class:`~continuum_hub.gateway.backend.SiteClusterConfig`.

    Raises
    ------
    ValueError
        With a message for the user.
    """
    check_label(options.get("name", ""))
    site = _site(options, registry, set(groups))
    name = options["partition"]
    part = site.default_partition if name == DEFAULT else site.partition(name)
    if part is None:
        offered = ", ".join(p.name for p in site.partitions)
        raise ValueError(f"site {site.name} has no partition {name!r} for you (offers {offered})")
    where = f"partition {part.name} of site {site.name}"
    cores, memory, gpus = (
        options["worker_cores"], options["worker_memory_gb"], options["worker_gpus"]
    )  # fmt: skip
    for value, most, what in (
        (cores, part.max_cores, "cores"),
        (memory, part.max_memory_gb, "GB of memory"),
        (gpus, part.max_gpus, "GPUs"),
    ):
        if value > most:
            raise ValueError(f"a worker may have at most {most} {what} on {where}, not {value}")
    if options["walltime_minutes"] > part.max_walltime_minutes:
        raise ValueError(f"the walltime on {where} is at most {part.max_walltime_minutes} minutes")
    env_name = options["environment"]
    env = site.default_environment if env_name == DEFAULT else site.environment(env_name)
    if env is None:
        offered = ", ".join(e.name for e in site.environments)
        raise ValueError(f"site {site.name} has no environment {env_name!r} (offers {offered})")
    max_workers = _max_workers(cores, gpus, limits)
    low, high = options["adaptive_minimum"], options["adaptive_maximum"]
    if low > high:
        raise ValueError(f"adaptive minimum {low} is above the adaptive maximum {high}")
    if high > max_workers:
        raise ValueError(
            f"adaptive maximum of {high} workers exceeds the {max_workers} workers of "
            f"{cores} cores and {gpus} GPUs that your limits allow"
        )
    start = options.get("workers", 0)
    if start > max_workers:
        raise ValueError(
            f"{start} workers exceed the {max_workers} workers of {cores} cores and {gpus} "
            "GPUs that your limits allow"
        )
    config = {
        "site": site.name,
        "partition": part.name,
        "account": site.account or "",
        "worker_cores": cores,
        "worker_memory": memory * GIB,
        "worker_gpus": gpus,
        "gpu_type": part.gpu_type or "" if gpus else "",
        "software_environment": env.name,
        "walltime_minutes": options["walltime_minutes"],
        "adaptive_minimum": low,
        "adaptive_maximum": high,
        "cluster_max_workers": max_workers,
    }
    if account is not None and isinstance(part, EventPartition):
        # the gateway's decision from the event, never a user option
        reservation = event_reservation(part, account(site) or "")
        if reservation:
            config["reservation"] = reservation
    if start:  # only then: the configs of clusters made without workers stay as they were
        config["start_workers"] = start
    if "idle_timeout_minutes" in options:  # offered when the gateway has an idle timeout
        config["idle_timeout"] = options["idle_timeout_minutes"] * 60
    return config


def _max_workers(cores: int, gpus: int, limits: Limits) -> int:
    """Workers of ``cores``/``gpus`` each that ``limits`` allow in one cluster (at least 1)."""
    if cores > limits.max_cores:
        raise ValueError(f"a worker of {cores} cores exceeds {limits.why('max_cores')}")
    if gpus > limits.max_gpus:
        raise ValueError(f"a worker with {gpus} GPU(s) exceeds {limits.why('max_gpus')}")
    most = min(limits.max_workers, limits.max_cores // cores)
    if gpus:
        most = min(most, limits.max_gpus // gpus)
    if most < 1:
        raise ValueError(f"no worker fits {limits.why('max_workers')}")
    return most


def check_label(label: str) -> None:
    """Refuse a cluster name that is not empty (made up later) and not :data:`CLUSTER_LABEL`."""
    if label and not CLUSTER_LABEL.match(label):
        raise ValueError(
            "name must be 1 to 40 letters, digits, '-' or '_', starting with a letter or digit, "
            f"not {label!r}"
        )


def cluster_label(wanted: str, taken: Collection[str], site: str, partition: str) -> str:
    """The readable name of a new cluster: ``wanted``, or ``<site>-<partition>-<n>`` with the
    smallest ``n`` free when it is empty.

    ``taken`` holds the names of the user's active clusters.

    Raises
    ------
    ValueError
        When ``wanted`` is one of them.
    """
    if wanted:
        if wanted in taken:
            raise ValueError(f"you already have an active cluster named {wanted!r}")
        return wanted
    n = 1
    while f"{site}-{partition}-{n}" in taken:
        n += 1
    return f"{site}-{partition}-{n}"
