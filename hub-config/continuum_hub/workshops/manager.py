"""The hub side of workshop events: who instructs, the limits, the store and the reservations.

:class:`EventManager` is one per hub process (``EventManager.instance(config=…)``), configured
through its traitlets section.  The REST handlers (:mod:`.api`) are thin over it; the spawner
reaches it through :func:`reservation_hook` (``SiteSpawner.reservation_hook``), so a
participant's server starts in the event's reservation while the event runs.

Instructors are members of a group ``<vo>#<instructor_role>`` (the entitlement
``…:group:<vo>:role=instructor`` becomes that group, see
:func:`continuum_hub.identity.entitlements.group_name`), or of one of ``instructor_groups``;
hub admins may do everything.  An instructor opens events only to the VOs they instruct and
sees and changes only their own events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from traitlets import Float, Integer, List, Unicode
from traitlets.config import SingletonConfigurable

from continuum_spawners.sites import Site, SiteRegistry, load_registry

from .model import Event, EventError, Limits, updated_event, validate_event
from .reservations import Reservations
from .store import EventStore, events_url, store_for


class EventManager(SingletonConfigurable):
    """Workshop events of this hub (see the module)."""

    instructor_role = Unicode(
        "instructor",
        config=True,
        help="""Entitlement role that makes a VO's member an instructor of that VO: the hub
        group ``<vo>#<role>`` (``urn:…:group:<vo>:role=instructor``).  Empty: none by role.""",
    )
    instructor_groups = List(
        Unicode(),
        config=True,
        help="""Hub groups whose members are instructors of the group itself (its name is the
        VO they may open events to), besides those with ``instructor_role``.  Default: none.""",
    )
    max_days = Float(
        14.0,
        config=True,
        help="Longest event window in days (default 14); longer windows are refused.",
    )
    max_seats = Integer(200, config=True, help="Most seats one event may have (default 200).")
    material_roots = List(
        Unicode(),
        config=True,
        help="""Folders on the hub host under which an event's material folder may lie
        (absolute paths).  Default: none (folder material is refused).""",
    )
    material_interval = Float(
        30.0,
        config=True,
        help="""Seconds between a participant's server's checks for a pushed material update
        (``POST /hub/api/continuum/events/{id}/material/push``); default 30.""",
    )
    lead_minutes = Float(
        60.0,
        config=True,
        help="""Minutes before an event's start its Slurm reservation is made (default 60);
        an event created later than that gets its reservation at once.""",
    )
    reconcile_interval = Float(
        60.0,
        config=True,
        help="""Seconds between the periodic checks that make due reservations, retry refused
        ones and forget those of ended events (default 60).""",
    )
    command_timeout = Float(
        30.0, config=True, help="Seconds after which a scheduler command (scontrol) is killed."
    )
    db_url = Unicode(
        "",
        config=True,
        help="""Database of the events (SQLAlchemy URL).  Default: the hub's own PostgreSQL
        database, or ``continuum-events.sqlite`` beside the hub's SQLite file.""",
    )
    registry_path = Unicode(
        "",
        config=True,
        help="The site registry (YAML).  Default: ``SiteSpawner.registry_path``.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        hub = self.config.JupyterHub
        url = self.db_url or events_url(hub.get("db_url", "sqlite:///jupyterhub.sqlite"))
        self.store: EventStore = store_for(url)
        self.reservations = Reservations(
            self.store,
            self.registry,
            self.log,
            lead=timedelta(minutes=self.lead_minutes),
            timeout=self.command_timeout,
        )
        self._task: asyncio.Task[None] | None = None

    # -- who may do what -------------------------------------------------------------------------

    def registry(self) -> SiteRegistry:
        path = self.registry_path or self.config.SiteSpawner.get("registry_path", "")
        if not path:
            raise RuntimeError("EventManager.registry_path (or SiteSpawner's) is not set")
        return load_registry(path, max_age=10.0)

    def instructs(self, groups: Iterable[str]) -> set[str]:
        """The VOs a member of ``groups`` instructs."""
        names = set(groups)
        vos = {g for g in names if g in self.instructor_groups}
        if self.instructor_role:
            suffix = f"#{self.instructor_role}"
            vos |= {g.removesuffix(suffix) for g in names if g.endswith(suffix)}
        return vos

    def may_create(self, user: Any) -> bool:
        return bool(user.admin or self.instructs(g.name for g in user.groups))

    def check_owner(self, user: Any, ev: Event | None, event_id: str) -> Event:
        """``ev`` if ``user`` may see and change it; else 404 (none) or 403 (another's)."""
        if ev is None:
            raise EventError(f"no event {event_id}", 404)
        if ev.owner != user.name and not user.admin:
            raise EventError(f"event {event_id} belongs to another instructor", 403)
        return ev

    def _check_kwargs(self, user: Any) -> dict[str, Any]:
        registry = self.registry()
        groups = {g.name for g in user.groups}
        if user.admin:  # admins check profiles as someone in every group of the registry
            for site in registry:
                groups |= set(site.groups or ())
                for part in site.partitions:
                    groups |= set(part.groups or ())
        limits = Limits(self.max_days, self.max_seats, tuple(self.material_roots))
        instructs = None if user.admin else self.instructs(groups)
        return {"registry": registry, "groups": groups, "limits": limits, "instructs": instructs}

    # -- events ----------------------------------------------------------------------------------

    async def create(self, user: Any, body: Any) -> Event:
        if not self.may_create(user):
            raise EventError("only instructors and hub admins may create events", 403)
        ev = validate_event(body, owner=user.name, **self._check_kwargs(user))
        self.store.add(ev)
        return await self.reservations.ensure(ev)

    async def update(self, user: Any, ev: Event, body: Any) -> Event:
        kwargs = self._check_kwargs(user)
        now = datetime.now(UTC)
        if isinstance(body, dict) and "start" not in body and ev.start < now:
            # a running event keeps its start
            kwargs["limits"] = Limits(
                kwargs["limits"].max_days,
                kwargs["limits"].max_seats,
                kwargs["limits"].folder_roots,
                grace=now - ev.start + timedelta(minutes=1),
            )
        fresh = updated_event(ev, body, **kwargs)
        moved = (fresh.start, fresh.end, fresh.cores, fresh.site, fresh.partition) != (
            ev.start,
            ev.end,
            ev.cores,
            ev.site,
            ev.partition,
        )
        self.store.save(fresh)
        if moved and fresh.reservation_state == "created":
            # a reservation's window and cores are remade, not patched (the scheduler would
            # refuse a change that conflicts; remaking says so in reservation_error)
            old = replace(fresh, site=ev.site, partition=ev.partition, start=ev.start, end=ev.end)
            released = await self.reservations.release(old)
            if released.reservation_state == "deleted":
                fresh = replace(fresh, reservation_state="none", reservation_error="")
                self.store.save(fresh)
                fresh = await self.reservations.ensure(fresh)
            else:
                self.store.save(fresh)
        return fresh

    async def delete(self, ev: Event) -> None:
        """Remove the event and its reservation; 409 (event kept) when the site keeps the
        reservation (Slurm refuses while jobs run in it: stop the participants' servers)."""
        ev = await self.reservations.release(ev)
        if ev.reservation_state == "created":
            raise EventError(
                f"the site keeps reservation {ev.reservation} ({ev.reservation_error}); "
                "stop the participants' servers and delete again",
                409,
            )
        self.store.remove(ev.id)

    def add_participant(self, ev: Event, user: str) -> bool:
        if user not in ev.participants and len(ev.participants) >= ev.seats:
            raise EventError(f"event {ev.id} is full ({ev.seats} seats)", 409)
        return self.store.add_participant(ev.id, user)

    async def reservation_for(
        self, user: str, site: Site, partition: str, account: str
    ) -> str | None:
        """The reservation a server of ``user`` on ``site``/``partition`` run as ``account``
        starts in: that of a running event they take part in there, with ``account`` let in."""
        for ev in self.store.events_of(user, datetime.now(UTC)):
            if ev.site != site.name or ev.partition != partition:
                continue
            ev = await self.reservations.ensure(ev)
            if ev.reservation_state not in ("created", "external"):
                self.log.warning("Event %s has no reservation yet: %s", ev.id, ev.reservation_error)
                return None
            await self.reservations.admit(ev, account)
            return ev.reservation
        return None

    # -- the periodic task -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the periodic reconciliation in the running event loop (once)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
            self.log.info(
                "Workshop events: reservations checked every %.0f s (%s)",
                self.reconcile_interval,
                self.store.engine.url.render_as_string(hide_password=True),
            )

    async def _loop(self) -> None:
        while True:
            try:
                await self.reservations.reconcile()
            except Exception:
                self.log.exception("Reconciling the events' reservations")
            await asyncio.sleep(self.reconcile_interval)


async def reservation_hook(spawner: Any, site: Site) -> str | None:
    """``SiteSpawner.reservation_hook``: the event reservation of this server's job, if any."""
    manager = EventManager.instance(config=spawner.config)
    manager.start()
    request = spawner.request
    if request is None or not spawner.site_account:
        return None
    try:
        return await manager.reservation_for(
            spawner.user.name, site, request.partition, spawner.site_account
        )
    except Exception:
        # a participant's server outside the reservation beats no server at all
        manager.log.exception("No event reservation for %s", spawner.user.name)
        return None
