"""The workshop routes of ``continuum_lab`` (``{base_url}continuum/workshop/…``).

Thin authenticated handlers over :class:`~continuum_lab.workshop.WorkshopManager`, which calls
the hub's workshop API: instructors' messages (polled by every lab), the events a user
instructs, and an instructor's actions.  Polls are no activity, so a participant who only keeps
the lab open shows as idle.  :data:`ROUTES` is part of :data:`continuum_lab.handlers.ROUTES`.
"""

from __future__ import annotations

from tornado import web

from .handler_base import ContinuumHandler, ServiceHandler


class WorkshopMessagesHandler(ServiceHandler):
    """``GET /continuum/workshop/messages?after=N``: instructors' messages of the user's
    running events newer than message ``N``, polled by every lab."""

    # a poll is no activity: a participant who only keeps the lab open shows as idle
    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        after = self.get_query_argument("after", "")
        await self.forward(lambda: self.workshop.messages(after))


class WorkshopEventsHandler(ServiceHandler):
    """``GET /continuum/workshop/events``: the events the user instructs, with their
    participants' states (empty for anyone else)."""

    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workshop.events)


class WorkshopActionHandler(ServiceHandler):
    """``POST /continuum/workshop/act`` ``{"event", "action", "user"?, "text"?}``: start all,
    stop all, push the material, end, send a message, open a participant's server."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(lambda: self.workshop.act(self.json_object()))


# (path below {base_url}continuum/, handler class)
ROUTES: list[tuple[str, type[ContinuumHandler]]] = [
    ("workshop/messages", WorkshopMessagesHandler),
    ("workshop/events", WorkshopEventsHandler),
    ("workshop/act", WorkshopActionHandler),
]
