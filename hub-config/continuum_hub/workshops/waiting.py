"""The waiting room of a full event: ``/hub/continuum/events/<id>/waiting``.

When every seat of an event is taken (its participants are as many as its seats; the
reservation holds ``seats × the largest profile's cores``, so cores never run out before seats),
the next person who may join queues instead of being refused or failing to spawn.  The queue is
a table of the events' store (``continuum_event_waiting``: event, user, when they queued),
first come first served.  The page shows the position and refreshes itself every
:data:`REFRESH_SECONDS`; each visit re-counts the seats, so when a seat frees (the instructor
removes a participant, or a leaving one is removed at the end of their time) the first in the
queue is made a participant on their next refresh and sent on (``?next=`` within the hub, else
the spawn page).  The join flow sends people here by :func:`waiting_url` when
:meth:`WaitingRoom.enter` gives a position.

Who may queue: hub admins, the event's owner, people already queued or in, members of the
event's VOs and, for events open to every federated identity, anyone signed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jupyterhub import handlers as hub_handlers
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert, select, update
from tornado import web

from .manager import EventManager
from .model import Event
from .store import EventStore

PAGE_ROUTE = r"/continuum/events/([0-9a-f]{12})/waiting"
REFRESH_SECONDS = 5
#: someone who has not looked at the page for this long has left the queue (a closed tab must
#: not hold a free seat forever)
STALE_SECONDS = 60

waiting = Table(
    "continuum_event_waiting",
    MetaData(),
    Column("event_id", String(12), primary_key=True),
    Column("user", String(255), primary_key=True),
    Column("queued_at", DateTime(timezone=True), nullable=False, index=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


def waiting_url(base_url: str, event_id: str) -> str:
    """The waiting page of ``event_id`` under the hub's ``base_url`` (``/hub/``)."""
    return url_path_join(base_url, "continuum/events", event_id, "waiting")


class WaitingRoom:
    """The queues of full events, in the events' database."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        waiting.create(store.engine, checkfirst=True)

    def queue(self, event_id: str) -> list[str]:
        """Who waits for ``event_id``, first first (those gone for :data:`STALE_SECONDS` are
        dropped)."""
        stale = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS)
        with self.store.engine.begin() as db:
            here = waiting.c.event_id == event_id
            db.execute(delete(waiting).where(here, waiting.c.seen_at < stale))
            query = select(waiting.c.user).where(here).order_by(waiting.c.queued_at)
            return [row.user for row in db.execute(query)]

    def leave(self, event_id: str, user: str) -> bool:
        """Take ``user`` out of the queue; ``False`` if they were not in it."""
        key = (waiting.c.event_id == event_id) & (waiting.c.user == user)
        with self.store.engine.begin() as db:
            return db.execute(delete(waiting).where(key)).rowcount > 0

    def forget(self, event_id: str) -> None:
        """Drop the queue of an ended or deleted event."""
        with self.store.engine.begin() as db:
            db.execute(delete(waiting).where(waiting.c.event_id == event_id))

    def enter(self, ev: Event, user: str) -> int:
        """Let ``user`` in if a seat is free for them (``0``), else their place in the queue
        (1 = first), queueing them if they were not yet.

        A free seat goes to the first in the queue: someone later only gets one when there
        are more free seats than people ahead of them.
        """
        fresh = self.store.get(ev.id) or ev
        if user in fresh.participants:
            self.leave(ev.id, user)
            return 0
        queue = self.queue(ev.id)
        now = datetime.now(UTC)
        key = (waiting.c.event_id == ev.id) & (waiting.c.user == user)
        with self.store.engine.begin() as db:
            if user in queue:
                db.execute(update(waiting).where(key).values(seen_at=now))
            else:
                row = {"event_id": ev.id, "user": user, "queued_at": now, "seen_at": now}
                db.execute(insert(waiting).values(**row))
                queue.append(user)
        ahead = queue.index(user)
        if ahead < fresh.seats - len(fresh.participants):
            self.store.add_participant(ev.id, user)
            self.leave(ev.id, user)
            return 0
        return ahead + 1


def may_queue(user: Any, ev: Event, queued: bool) -> bool:
    """Whether ``user`` (a hub user) may wait for a seat of ``ev``."""
    if user.admin or user.name == ev.owner or queued or user.name in ev.participants:
        return True
    return ev.federated or bool(set(ev.vos) & {g.name for g in user.groups})


PAGE = """{% extends "page.html" %}
{% block meta %}{{ super() }}<meta http-equiv="refresh" content="{{ refresh }}">{% endblock %}
{% block main %}
<div class="container" id="continuum-waiting">
  <h1>{{ title }}</h1>
  <p class="lead">The event is full. You are number
    <strong id="continuum-waiting-position">{{ position }}</strong> in the queue.</p>
  <p>Keep this page open: it checks every {{ refresh }} seconds and takes you to the event as
    soon as a seat is free for you. Nothing has been started for you yet.</p>
</div>
{% endblock %}
"""


class WaitingPageHandler(BaseHandler):
    """``GET /hub/continuum/events/<id>/waiting``: queue, show the position, or let in."""

    @web.authenticated
    async def get(self, event_id: str) -> None:
        user = self.current_user
        manager = EventManager.instance(config=self.settings["config"])
        ev = manager.store.get(event_id)
        if ev is None or ev.end <= datetime.now(UTC):
            raise web.HTTPError(404, f"no current event {event_id}")
        room = WaitingRoom(manager.store)
        if not may_queue(user, ev, user.name in room.queue(ev.id)):
            self.log.warning("%s may not wait for event %s", user.name, ev.id)
            raise web.HTTPError(403, "you may not join this event")
        position = room.enter(ev, user.name)
        if position == 0:
            self.log.info("%s let into event %s from the waiting room", user.name, ev.id)
            default = url_path_join(self.hub.base_url, "spawn")
            self.redirect(self.get_next_url(user, default=default))
            return
        namespace = {**self.template_namespace, "xsrf_token": self.xsrf_token.decode("ascii")}
        namespace.update(title=ev.title, position=position, refresh=REFRESH_SECONDS)
        self.set_header("Cache-Control", "no-store")
        template = self.settings["jinja2_env"].from_string(PAGE)
        self.finish(await template.render_async(**namespace))


def install_waiting_page() -> None:
    """Add the waiting page's route to the hub's pages (idempotent)."""
    routes = hub_handlers.default_handlers
    routes[:] = [h for h in routes if h[0] != PAGE_ROUTE]
    routes.append((PAGE_ROUTE, WaitingPageHandler))
