"""The sites a user may use in the hub's services, a running workshop event's site included.

Every service that decides a user's sites (the Dask Gateway's cluster options, the workflow
service's options, checks and placement) calls :func:`usable_sites` (or :func:`usable_registry`
where the spawner's :func:`~continuum_spawners.options.validate_options` wants a registry)
instead of ``registry.for_groups(groups)``: the sites of the user's groups, plus, while an event
they take part in runs, the event's site with only the event's partition, bounded by the event's
largest profile (cores, memory and GPUs of one job; walltime no longer than that profile's nor
than what is left of the event) and only the profiles' software environments.  A participant
whose own groups already give them that partition keeps it as their groups give it.

Participation is what the hub's token says: the hub puts a participant (federated or guest) in
the group ``workshop-<id>`` for the event's window, and the services read a user's groups from
the hub with each request.  Whether that event runs now (an instructor may end it early, or
delete it) comes from the events' database, read-only: the hub tells its services where it is
in :data:`EVENTS_ENV` (a URL without password: the services' own environment authenticates, as
for their own databases), see :func:`events_environment`.  No database, or a failing one: nothing
extra is offered.

The partition of an event carries its Slurm reservation (:class:`EventPartition`);
:func:`event_reservation` says whether a job of a given account goes into it: the site's own
reservation (the event names it) takes any account the site lets in, the hub's takes the
accounts it was made for or admitted as participants' servers started (the spawner's
``reservation_hook``); any other job runs beside it on the same partition.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from continuum_spawners.sites import Partition, Site, SiteRegistry

from .model import Event
from .store import EventStore, events, events_url

log = logging.getLogger(__name__)

#: where a service process finds the events' database (set by the hub, :func:`events_environment`)
EVENTS_ENV = "CONTINUUM_EVENTS_DB_URL"
#: the hub group of an event's participants (:data:`continuum_hub.workshops.join.GROUP_PREFIX`;
#: not imported, which would load the hub's request handlers into every service)
GROUP_PREFIX = "workshop-"


@dataclass(frozen=True)
class EventPartition(Partition):
    """A partition offered through a running event: its limits are the event's profiles'."""

    #: the event's id
    event: str = ""
    #: its Slurm reservation ("" while it has none)
    reservation: str = ""
    #: the accounts the hub's reservation lets in; empty: the site's own reservation
    reservation_users: tuple[str, ...] = ()


def event_reservation(partition: Partition | None, account: str) -> str | None:
    """The reservation a job of ``account`` on ``partition`` runs in, or ``None``."""
    if not isinstance(partition, EventPartition) or not partition.reservation:
        return None
    if partition.reservation_users and account not in partition.reservation_users:
        return None  # not admitted: beside the reservation, as anyone's job
    return partition.reservation


def event_partition(ev: Event, part: Partition, now: datetime) -> EventPartition:
    """``part`` of ``ev``'s site bounded by the event's largest profile and its end."""
    left = max(1, int((ev.end - now).total_seconds() // 60))
    walltime = min(part.max_walltime_minutes, max(p.walltime_minutes for p in ev.profiles), left)
    reservation, users = "", ()
    if ev.reservation_state == "created":
        reservation, users = ev.reservation, tuple(ev.reservation_users)
    elif ev.reservation_state == "external":
        reservation = ev.reservation
    fields = {key: getattr(part, key) for key in Partition.__dataclass_fields__}
    fields.update(
        max_cores=min(part.max_cores, max(p.cores for p in ev.profiles)),
        max_memory_gb=min(part.max_memory_gb, max(p.memory_gb for p in ev.profiles)),
        max_gpus=min(part.max_gpus, max(p.gpus for p in ev.profiles)),
        max_walltime_minutes=walltime,
        default_walltime_minutes=min(part.default_walltime_minutes, walltime),
        groups=None,  # the event lets its participants in, whatever the partition's groups
    )
    return EventPartition(**fields, event=ev.id, reservation=reservation, reservation_users=users)


def _with_event(own: Site | None, full: Site, ev: Event, now: datetime) -> Site | None:
    """``own`` (the user's view of ``full``, or ``None``) with ``ev``'s partition added."""
    part = full.partition(ev.partition)
    if part is None or not ev.profiles:
        return own  # the registry changed under the event: nothing to offer
    if own is not None and own.partition(ev.partition) is not None:
        return own  # their groups give it already, unbounded
    offered = event_partition(ev, part, now)
    if own is not None:
        return replace(own, partitions=(*own.partitions, replace(offered, default=False)))
    names = {p.environment for p in ev.profiles}
    environments = tuple(e for e in full.environments if e.name in names)
    return replace(
        full,
        partitions=(replace(offered, default=True),),
        environments=environments or (full.default_environment,),
    )


def merge_events(
    registry: SiteRegistry, groups: Iterable[str], running: Iterable[Event], now: datetime
) -> list[Site]:
    """``registry.for_groups(groups)`` with the sites of the events of ``running`` whose group
    is among ``groups`` and that run at ``now`` (in the registry's order)."""
    groups = set(groups)
    sites = {site.name: site for site in registry.for_groups(groups)}
    for ev in running:
        if GROUP_PREFIX + ev.id not in groups or not ev.running(now):
            continue
        full = registry.get(ev.site)
        if full is None:
            continue
        site = _with_event(sites.get(ev.site), full, ev, now)
        if site is not None:
            sites[ev.site] = site
    return [sites[site.name] for site in registry if site.name in sites]


def usable_sites(
    registry: SiteRegistry,
    groups: Iterable[str],
    running: Iterable[Event] | None = None,
    now: datetime | None = None,
) -> list[Site]:
    """The sites (with their partitions) a member of ``groups`` may use in a service now.

    Parameters
    ----------
    running
        The events to consider; ``None``: the running events of ``groups`` in the events'
        database named by :data:`EVENTS_ENV` (none where it is unset).
    now
        The time the events must run at (default: now).
    """
    groups = set(groups)
    now = now or datetime.now(UTC)
    if running is None:
        running = running_events(groups, now)
    return merge_events(registry, groups, running, now)


class UsableRegistry(SiteRegistry):
    """``registry`` as a service's user sees it: :meth:`for_groups` is :func:`usable_sites`
    (for the events given), every other answer the full registry's (a site outside the user's
    reach is "not allowed", not "unknown")."""

    def __init__(self, registry: SiteRegistry, running: Sequence[Event], now: datetime) -> None:
        # the full registry's sites and budgets, shared (no second validation)
        self.sites = registry.sites
        self.budgets = registry.budgets
        self.full = registry
        self.running = tuple(running)
        self.now = now

    def for_groups(self, user_groups: Iterable[str]) -> list[Site]:
        return merge_events(self.full, user_groups, self.running, self.now)


def usable_registry(
    registry: SiteRegistry,
    groups: Iterable[str],
    running: Iterable[Event] | None = None,
    now: datetime | None = None,
) -> SiteRegistry:
    """A registry whose ``for_groups(groups)`` is :func:`usable_sites` (the spawner's option
    checks and candidates take a registry); ``registry`` itself when no event adds anything."""
    groups = set(groups)
    now = now or datetime.now(UTC)
    found = list(running_events(groups, now) if running is None else running)
    if not any(GROUP_PREFIX + ev.id in groups and ev.running(now) for ev in found):
        return registry
    return UsableRegistry(registry, found, now)


# -- the events' database, read-only ---------------------------------------------------------


class EventReader(EventStore):
    """:class:`~.store.EventStore`'s queries on a read-only connection (never makes tables)."""

    def __init__(self, url: str) -> None:  # no super().__init__(): it would create tables
        parsed = make_url(url)
        self.sqlite_path: Path | None = None
        if parsed.get_backend_name() == "sqlite":
            self.sqlite_path = Path(parsed.database or "").absolute()
            # SQLite's URI form: mode=ro refuses every write, and never creates the file
            uri = f"sqlite:///file:{quote(str(self.sqlite_path))}?mode=ro&uri=true"
            self.engine = create_engine(uri)
        else:
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                connect_args={"options": "-c default_transaction_read_only=on"},
            )

    def running(self, event_ids: Iterable[str], now: datetime) -> list[Event]:
        """The events of ``event_ids`` that run at ``now`` (none when the database fails)."""
        ids = sorted(set(event_ids))
        if not ids or (self.sqlite_path is not None and not self.sqlite_path.exists()):
            return []  # no events, or a hub without workshops: no file was ever made
        query = select(events).where(
            events.c.id.in_(ids), events.c.start <= now, events.c.end > now
        )
        try:
            return self._load(query)
        except SQLAlchemyError as exc:
            log.warning("Workshop events unreadable, no event sites offered: %s", exc)
            return []


_READERS: dict[str, EventReader] = {}


def running_events(groups: Iterable[str], now: datetime, url: str | None = None) -> list[Event]:
    """The running events whose group is among ``groups``, from the database at ``url``
    (default: :data:`EVENTS_ENV`; unset: none)."""
    url = os.environ.get(EVENTS_ENV, "") if url is None else url
    ids = [g.removeprefix(GROUP_PREFIX) for g in groups if g.startswith(GROUP_PREFIX)]
    if not url or not ids:
        return []
    if url not in _READERS:
        _READERS[url] = EventReader(url)
    return _READERS[url].running(ids, now)


def events_environment(config: Any) -> dict[str, str]:
    """:data:`EVENTS_ENV` for a service process: the hub's events' database (``EventManager.
    db_url``, else beside or in the hub's own), without its password."""
    manager = config.EventManager if "EventManager" in config else {}
    url = manager.get("db_url", "") or events_url(
        config.JupyterHub.get("db_url", "sqlite:///jupyterhub.sqlite")
    )
    parsed = make_url(url)
    # no password in the environment (URL.set cannot remove one: build it without)
    bare = URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return {EVENTS_ENV: bare.render_as_string(hide_password=False)}


__all__ = [
    "EVENTS_ENV",
    "EventPartition",
    "UsableRegistry",
    "event_reservation",
    "events_environment",
    "running_events",
    "usable_registry",
    "usable_sites",
]
