"""The instructor's view: hub page ``/hub/continuum/events/{id}/instructor`` and its REST calls.

=================================================================  ================================
``GET  /hub/continuum/events/{id}/instructor``                     the page (template
                                                                   ``continuum-instructor.html``)
``GET  /hub/continuum/events/{id}/attendance.csv``                 the attendance as CSV
``GET  /hub/api/continuum/events/{id}/instructor``                 participants' states, messages
``POST /hub/api/continuum/events/{id}/instructor/start``           start every stopped server
``POST /hub/api/continuum/events/{id}/instructor/stop``            stop every participant's server
``POST /hub/api/continuum/events/{id}/instructor/message``         ``{"text": …}`` to all
``POST /hub/api/continuum/events/{id}/instructor/end``             stop, revoke, release, close
``POST /hub/api/continuum/events/{id}/instructor/open/{user}``     share ``user``'s server → URL
``GET  /hub/api/continuum/events/messages?after=N``                a participant's messages
=================================================================  ================================

Only the event's instructor (its owner) and hub admins pass :meth:`.EventManager.check_owner`;
an instructor of another event gets 403.  The logic is in :mod:`.instructor`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jupyterhub import apihandlers
from jupyterhub import handlers as hub_handlers
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets.config import Config

from ..sharing.page import TEMPLATES as SHARING_TEMPLATES
from ..sharing.page import add_template_path, install_routes
from .api import _EventsBase
from .instructor import (
    Messages,
    attendance_csv,
    event_spawner,
    joined_at,
    open_share,
    participant_rows,
    revoke_event_shares,
    rows_json,
)
from .manager import EventManager
from .model import Event, EventError

EVENT = r"([0-9a-f]{12})"
TEMPLATE = "continuum-instructor.html"
TEMPLATES = Path(__file__).parent / "templates"
_messages: dict[int, Messages] = {}


def messages_of(manager: EventManager) -> Messages:
    """The messages kept in ``manager``'s database (one :class:`Messages` per engine)."""
    engine = manager.store.engine
    if id(engine) not in _messages:
        _messages[id(engine)] = Messages(engine)
    return _messages[id(engine)]


class _InstructorMixin:
    """The event of the URL if the caller instructs it, and its participants' rows."""

    def event(self: Any, event_id: str) -> Event:
        manager = EventManager.instance(config=self.settings["config"])
        user = self.current_user
        try:
            if getattr(user, "kind", "user") != "user":
                # a service token: the view acts as a hub user (shares go to that user)
                raise EventError("the instructor's view is for hub users, not services", 403)
            return manager.check_owner(user, manager.store.get(event_id), event_id)
        except EventError as exc:
            self.log.warning("Instructor view of %s refused: %s", event_id, exc)
            raise web.HTTPError(exc.status, str(exc)) from None

    def rows(self: Any, ev: Event) -> list[Any]:
        manager = EventManager.instance(config=self.settings["config"])
        users = {name: self.find_user(name) for name in ev.participants}
        return participant_rows(ev, users, joined_at(manager.store.engine, ev.id), _now())


def _now() -> datetime:
    return datetime.now(UTC)


class InstructorPageHandler(_InstructorMixin, BaseHandler):
    @web.authenticated
    async def get(self, event_id: str) -> None:
        ev = self.event(event_id)
        api = url_path_join(self.hub.base_url, "api/continuum/events", ev.id, "instructor")
        self.set_header("Cache-Control", "no-store")
        html = await self.render_template(
            TEMPLATE,
            ev=ev,
            rows=self.rows(ev),
            api_url=api,
            csv_url=url_path_join(self.hub.base_url, "continuum/events", ev.id, "attendance.csv"),
            ended=ev.end <= _now(),
        )
        self.finish(html)


class AttendanceHandler(_InstructorMixin, BaseHandler):
    @web.authenticated
    def get(self, event_id: str) -> None:
        ev = self.event(event_id)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="attendance-{ev.id}.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(attendance_csv(ev, self.rows(ev)))


class InstructorAPIHandler(_InstructorMixin, _EventsBase):
    @web.authenticated
    def get(self, event_id: str) -> None:
        ev = self.event(event_id)
        self.reply(
            {
                "event": ev.as_json(),
                "participants": rows_json(self.rows(ev)),
                "messages": messages_of(self.manager()).of([ev]),
            }
        )


class InstructorActionHandler(_InstructorMixin, _EventsBase):
    @web.authenticated
    async def post(self, event_id: str, action: str) -> None:
        ev = self.event(event_id)
        if action == "message":
            body = self.get_json_body() or {}
            try:
                message = messages_of(self.manager()).add(
                    ev, self.current_user.name, body.get("text")
                )
            except EventError as exc:
                self.refuse(exc)
            self.log.info("Message to the participants of %s by %s", ev.id, self.current_user.name)
            self.reply(message, 201)
            return
        if action == "start":
            if not ev.running(_now()):
                # outside the window there is no reservation to start in
                self.refuse(EventError(f"event {ev.id} is not running now", 409))
            self.reply({"started": await self.start_all(ev)})
        elif action == "stop":
            self.reply({"stopped": await self.stop_all(ev)})
        else:  # end
            self.reply(await self.end(ev))

    async def start_all(self, ev: Event) -> list[str]:
        """Start the default server of every participant whose event server is stopped, with the
        event's first profile (each start runs on; this waits at most the hub's slow-spawn
        timeout per server, all at once)."""
        options = ev.profiles[0].user_options(ev.site, ev.partition)
        starting = []
        for name in ev.participants:
            user = self.find_user(name)
            if user is None or user.spawners[""].active:
                continue
            spawner = event_spawner(user, ev)
            if spawner is not None and spawner.active:
                continue
            starting.append((name, self.spawn_single_user(user, "", options=dict(options))))
        results = await asyncio.gather(*(c for _, c in starting), return_exceptions=True)
        for (name, _), result in zip(starting, results, strict=True):
            if isinstance(result, BaseException):
                self.log.warning("Starting the server of %s for %s: %s", name, ev.id, result)
        self.log.info(
            "%s started %d servers of event %s", self.current_user.name, len(starting), ev.id
        )
        return [name for name, _ in starting]

    async def stop_all(self, ev: Event) -> list[str]:
        """Stop every participant's server of the event (and wait for them to stop)."""
        stopping = []
        for name in ev.participants:
            user = self.find_user(name)
            spawner = event_spawner(user, ev)
            if spawner is not None and spawner.active:
                stopping.append((name, self.stop_single_user(user, spawner.name)))
        await asyncio.gather(*(c for _, c in stopping), return_exceptions=True)
        self.log.info(
            "%s stopped %d servers of event %s", self.current_user.name, len(stopping), ev.id
        )
        return [name for name, _ in stopping]

    async def end(self, ev: Event) -> dict[str, Any]:
        """End ``ev`` now: stop its servers, revoke the instructors' shares, release the
        reservation (the periodic task retries a refusal) and close the window."""
        stopped = await self.stop_all(ev)
        people = [u.orm_user for u in map(self.find_user, ev.participants) if u is not None]
        instructors = {ev.owner, self.current_user.name}
        revoked = 0
        for name in instructors:
            instructor = self.find_user(name)
            if instructor is not None:
                revoked += revoke_event_shares(self.db, people, instructor.orm_user)
        now = _now()
        closed = replace(ev, start=min(ev.start, now - timedelta(seconds=1)), end=now)
        manager = self.manager()
        manager.store.save(closed)
        closed = await manager.reservations.release(closed)
        self.log.info("Event %s ended by %s", ev.id, self.current_user.name)
        return {
            "event": closed.as_json(),
            "stopped": stopped,
            "shares_revoked": revoked,
            "attendance_url": url_path_join(
                self.hub.base_url, "continuum/events", ev.id, "attendance.csv"
            ),
        }


class OpenServerHandler(_InstructorMixin, _EventsBase):
    @web.authenticated
    def post(self, event_id: str, name: str) -> None:
        ev = self.event(event_id)
        if name not in ev.participants:
            self.refuse(EventError(f"{name[:40]} is no participant of event {ev.id}", 404))
        user = self.find_user(name)
        spawner = event_spawner(user, ev)
        if spawner is None or not spawner.ready:
            self.refuse(EventError(f"the server of {name} is not running", 409))
        open_share(self.db, spawner.orm_spawner, self.current_user.orm_user)
        self.log.info("%s opened the server of %s (event %s)", self.current_user.name, name, ev.id)
        self.reply({"user": name, "server": spawner.name, "url": user.server_url(spawner.name)})


class MyMessagesHandler(_EventsBase):
    @web.authenticated
    def get(self) -> None:
        user = self.caller()
        try:
            after = int(self.get_argument("after", "0"))
        except ValueError:
            raise web.HTTPError(400, "after: a message id") from None
        manager = self.manager()
        events = manager.store.events_of(user.name, _now())
        self.reply({"messages": messages_of(manager).of(events, after)})


PREFIX = r"/api/continuum/events"
API_ROUTES = (
    (PREFIX + r"/messages", MyMessagesHandler),
    (PREFIX + rf"/{EVENT}/instructor", InstructorAPIHandler),
    (PREFIX + rf"/{EVENT}/instructor/(start|stop|end|message)", InstructorActionHandler),
    (PREFIX + rf"/{EVENT}/instructor/open/([^/]{{1,255}})", OpenServerHandler),
)
PAGE_ROUTES = (
    (rf"/continuum/events/{EVENT}/instructor", InstructorPageHandler),
    (rf"/continuum/events/{EVENT}/attendance\.csv", AttendanceHandler),
)


def add_instructor_view(c: Config) -> None:
    """Install the instructor's routes (idempotent) and the page's template folder."""
    install_routes(apihandlers.default_handlers, API_ROUTES)
    install_routes(hub_handlers.default_handlers, PAGE_ROUTES)
    add_template_path(c, TEMPLATES)
    add_template_path(c, SHARING_TEMPLATES)  # the pages' shared script (continuum-api-call.html)
