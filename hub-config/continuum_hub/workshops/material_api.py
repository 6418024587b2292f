"""The hub side of workshop material: what a participant's server pulls, and "push update".

==============================================  ===============================================
``GET  /api/continuum/events/material``         the caller's running events with material:
                                                ``{"interval": s, "events": [{id, folder,
                                                material, version}]}`` (the server's own token
                                                is enough; :mod:`.material_pull` asks)
``POST /api/continuum/events/{id}/material/push``  the instructor's "push update": the event's
                                                version goes up, every running participant's
                                                server pulls again at its next poll
==============================================  ===============================================

The versions are a table of the events' store (``continuum_event_material``), so a push
survives a hub restart.  ``interval`` is ``EventManager.material_interval``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select, update
from tornado import web

from .api import PREFIX, _EventsBase, install_event_handlers
from .model import Event, EventError
from .store import EventStore

versions = Table(
    "continuum_event_material",
    MetaData(),
    Column("event_id", String(12), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("pushed_at", DateTime(timezone=True), nullable=False),
)


class MaterialVersions:
    """How often each event's material was pushed (0: never)."""

    def __init__(self, store: EventStore) -> None:
        self.engine = store.engine
        versions.create(self.engine, checkfirst=True)

    def get(self, event_ids: list[str]) -> dict[str, int]:
        found = dict.fromkeys(event_ids, 0)
        query = select(versions).where(versions.c.event_id.in_(event_ids))
        with self.engine.connect() as db:
            found.update({row.event_id: row.version for row in db.execute(query)})
        return found

    def push(self, event_id: str) -> int:
        """One more push of ``event_id``; the new version."""
        now = datetime.now(UTC)
        with self.engine.begin() as db:
            key = versions.c.event_id == event_id
            row = db.execute(select(versions.c.version).where(key)).first()
            version = (row.version if row else 0) + 1
            if row is None:
                db.execute(insert(versions).values(event_id=event_id, version=1, pushed_at=now))
            else:
                db.execute(update(versions).where(key).values(version=version, pushed_at=now))
        return version


def folder_name(ev: Event) -> str:
    """The folder of the participant's home the event's material goes into: its title as a
    plain name (``Intro to Dask!`` → ``Intro-to-Dask``), ``event-<id>`` if nothing is left."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", ev.title).strip("-._")[:60]
    return name or f"event-{ev.id}"


def material_plan(store: EventStore, user: str, interval: float) -> dict[str, Any]:
    """What :mod:`.material_pull` in ``user``'s server pulls now."""
    running = [ev for ev in store.events_of(user, datetime.now(UTC)) if ev.material]
    numbers = MaterialVersions(store).get([ev.id for ev in running])
    events = [
        {"id": ev.id, "folder": folder_name(ev), "material": ev.material, "version": numbers[ev.id]}
        for ev in running
    ]
    return {"interval": interval, "events": events}


class MaterialPlanHandler(_EventsBase):
    @web.authenticated
    def get(self) -> None:
        manager = self.manager()
        user = self.current_user
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "material belongs to hub users")
        self.reply(material_plan(manager.store, user.name, manager.material_interval))


class MaterialPushHandler(_EventsBase):
    @web.authenticated
    def post(self, event_id: str) -> None:
        ev = self.own(event_id)
        if not ev.material:
            self.refuse(EventError(f"event {ev.id} has no material to push", 409))
        version = MaterialVersions(self.manager().store).push(ev.id)
        servers = []
        for name in ev.participants:
            found = self.find_user(name)
            if found is not None and any(s.active for s in found.spawners.values()):
                servers.append(name)
        self.log.info(
            "Material of event %s pushed by %s (version %d, %d servers)",
            ev.id,
            self.current_user.name,
            version,
            len(servers),
        )
        interval = self.manager().material_interval
        self.reply({"event": ev.id, "version": version, "servers": servers, "interval": interval})


ROUTES = (
    (PREFIX + r"/material", MaterialPlanHandler),
    (PREFIX + r"/([0-9a-f]{12})/material/push", MaterialPushHandler),
)


def install_material_handlers() -> None:
    """Put the material routes into the hub's API (idempotent; before the hub builds routes)."""
    install_event_handlers(ROUTES)
