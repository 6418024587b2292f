"""REST API of workshop events, under ``/hub/api/continuum/events`` (thin over the manager).

=========================================================  ======================================
``GET  /events``                                           the caller's events (admins: all)
``POST /events``                                           create one (instructors, admins) → 201
``GET|PATCH|DELETE /events/{id}``                          one of the caller's events
``PUT|DELETE /events/{id}/participants/{user}``            add or remove a participant (DELETE:
                                                           also the participant, who leaves)
``GET  /events/join/{code}``                               the public part, for anyone signed in
=========================================================  ======================================

A participant removed (or who leaves) is taken out of the event's hub group at once: the
services, which read a user's groups from the hub, stop offering the event's site.

Every refusal is a JSON error with a message for people (400 bad input, 403 not allowed, 404,
409 full) and a log line; nothing is stored or started for a refused request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jupyterhub import apihandlers, orm
from jupyterhub.apihandlers import APIHandler
from tornado import web

from .manager import EventManager
from .model import EventError
from .usable import GROUP_PREFIX

PREFIX = r"/api/continuum/events"
#: a hub username as a participant (JupyterHub's names are lower-case, no '/')
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9@._+-]{0,254}$")


class _EventsBase(APIHandler):
    """Base: the signed-in user (services have no events), the manager, errors as JSON."""

    def manager(self) -> EventManager:
        manager = EventManager.instance(config=self.settings["config"])
        manager.start()
        return manager

    def caller(self) -> Any:
        user = self.current_user
        if getattr(user, "groups", None) is None or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "events belong to hub users, not to services")
        return user

    def refuse(self, exc: EventError) -> None:
        self.log.warning(
            "Event request of %s refused (%d): %s",
            getattr(self.current_user, "name", "?"),
            exc.status,
            exc,
        )
        raise web.HTTPError(exc.status, str(exc))

    def reply(self, model: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model))

    def own(self, event_id: str) -> Any:
        manager = self.manager()
        try:
            return manager.check_owner(self.caller(), manager.store.get(event_id), event_id)
        except EventError as exc:
            self.refuse(exc)


class EventsHandler(_EventsBase):
    @web.authenticated
    def get(self) -> None:
        user = self.caller()
        events = self.manager().store.list(None if user.admin else user.name)
        self.reply({"events": [ev.as_json() for ev in events]})

    @web.authenticated
    async def post(self) -> None:
        user = self.caller()
        try:
            ev = await self.manager().create(user, self.get_json_body())
        except EventError as exc:
            self.refuse(exc)
        self.log.info("Event %s created by %s on %s/%s", ev.id, user.name, ev.site, ev.partition)
        self.reply(ev.as_json(), 201)


class EventHandler(_EventsBase):
    @web.authenticated
    def get(self, event_id: str) -> None:
        self.reply(self.own(event_id).as_json())

    @web.authenticated
    async def patch(self, event_id: str) -> None:
        ev = self.own(event_id)
        try:
            ev = await self.manager().update(self.caller(), ev, self.get_json_body())
        except EventError as exc:
            self.refuse(exc)
        self.reply(ev.as_json())

    @web.authenticated
    async def delete(self, event_id: str) -> None:
        ev = self.own(event_id)
        try:
            await self.manager().delete(ev)
        except EventError as exc:
            self.refuse(exc)
        self.log.info("Event %s deleted by %s", ev.id, self.current_user.name)
        self.set_status(204)
        self.finish()


class ParticipantHandler(_EventsBase):
    @web.authenticated
    def put(self, event_id: str, name: str) -> None:
        ev = self.own(event_id)
        if not USER_NAME.match(name):
            self.refuse(EventError(f"not a hub user name: {name[:40]!r}"))
        try:
            added = self.manager().add_participant(ev, name)
        except EventError as exc:
            self.refuse(exc)
        self.reply({"event": ev.id, "user": name, "added": added}, 201 if added else 200)

    @web.authenticated
    def delete(self, event_id: str, name: str) -> None:
        store = self.manager().store
        ev = store.get(event_id)
        leaves = ev is not None and name == self.caller().name and name in ev.participants
        if not leaves:  # anyone else's removal is the instructor's
            ev = self.own(event_id)
        if not store.remove_participant(ev.id, name):
            self.refuse(EventError(f"{name[:40]} is no participant of event {ev.id}", 404))
        self.leave_group(ev.id, name)
        self.log.info(
            "%s %s event %s",
            self.current_user.name,
            "left" if leaves else f"removed {name} from",
            ev.id,
        )
        self.set_status(204)
        self.finish()

    def leave_group(self, event_id: str, name: str) -> None:
        """Take ``name`` out of the event's hub group now (not at their next sign-in)."""
        user = orm.User.find(self.db, name)
        group = orm.Group.find(self.db, GROUP_PREFIX + event_id)
        if user is not None and group is not None and group in user.groups:
            user.groups.remove(group)
            self.db.commit()


class JoinInfoHandler(_EventsBase):
    @web.authenticated
    def get(self, code: str) -> None:
        self.caller()
        ev = self.manager().store.by_code(code) if len(code) <= 64 else None
        if ev is None:
            self.refuse(EventError("no event has this join code", 404))
        self.reply(ev.public_json())


ROUTES = (
    (PREFIX, EventsHandler),
    (PREFIX + r"/join/([A-Za-z0-9_-]{1,64})", JoinInfoHandler),
    (PREFIX + r"/([0-9a-f]{12})", EventHandler),
    (PREFIX + r"/([0-9a-f]{12})/participants/([^/]{1,255})", ParticipantHandler),
)


def install_event_handlers(routes: tuple[tuple[str, Any], ...] = ROUTES) -> None:
    """Put the events' ``routes`` into the hub's API (idempotent; before the hub builds
    routes)."""
    paths = {route for route, _ in routes}
    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] not in paths]
    handlers.extend(routes)
