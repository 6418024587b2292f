"""Workshops from JupyterLab: the participants' messages and the instructor's panel.

:class:`WorkshopManager` forwards what the *workshop* lab extension asks to the hub's events API
(``/hub/api/continuum/events``, issue 13 item 5) with the server's own
``JUPYTERHUB_API_TOKEN``, which never reaches the browser; the hub answers for the token's
user, so a participant reads the messages of their own running events only and an
instructor sees and acts on their own events only (the hub's 403 passes through).

* :meth:`WorkshopManager.messages`: ``GET …/events/messages?after=N``, the instructors'
  messages of the user's running events newer than message ``N``.  A user in no event costs
  one such request per ``messages_refresh_seconds``.
* :meth:`WorkshopManager.events`: the user's events not yet ended, each with its participants'
  states (``GET …/events/{id}/instructor``); empty for anyone who instructs none, and then the
  lab adds no panel.
* :meth:`WorkshopManager.act`: start all, stop all, push the material, end, send a message,
  open a participant's server through sharing.  Everything sent is checked here first, so the
  route cannot make the server send the hub anything but these few known requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tornado.httpclient import HTTPRequest
from traitlets import Any as AnyTrait
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from .remote import ServiceError, fetch_json

#: an event's id, as the hub makes them
EVENT_ID = re.compile(r"^[0-9a-f]{12}$")
#: a hub user name (the hub's own rule for participants)
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9@._+-]{0,254}$")
#: the hub's path of each action, below ``/hub/api/continuum/events/{id}/``
ACTIONS = {
    "start": "instructor/start",
    "stop": "instructor/stop",
    "end": "instructor/end",
    "message": "instructor/message",
    "push": "material/push",
    "open": "instructor/open/",
}
#: longest message to participants (the hub's own limit)
MAX_MESSAGE = 2000
#: what the panel shows of an event (the hub's answer also holds the join code and more)
EVENT_FIELDS = ("id", "title", "start", "end", "seats", "site", "partition", "owner")
MESSAGE_FIELDS = ("id", "event", "title", "sent_at", "author", "text")
ROW_FIELDS = ("user", "joined", "server", "state", "detail", "job_id", "last_activity")


def refusal(code: int, reason: str) -> tuple[int, str]:
    """The status and message answering the hub's error ``code``: its 400, 403, 404 and 409
    are the user's (passed on); anything else is a 502 whose words stay in the hub's log."""
    if code in (400, 403, 404, 409):
        return code, reason
    return 502, f"The hub's workshop API failed (HTTP {code}); try again later."


def message_after(value: str) -> int:
    """The ``after`` argument: a message id, 0 when empty.

    Raises
    ------
    ServiceError
        400 when it is not a whole number of at most 18 digits.
    """
    value = value.strip() or "0"
    if not value.isdigit() or len(value) > 18:
        raise ServiceError(400, f"after={value[:20]!r} is not a message id")
    return int(value)


def action_request(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    """``(event id, the hub's path below the event, JSON body or None)`` for the panel's
    ``{"event", "action", "user"?, "text"?}``.

    Raises
    ------
    ServiceError
        400 for an unknown action, a malformed event id or user name, or a bad message.
    """
    event, action = body.get("event"), body.get("action")
    if not isinstance(event, str) or not EVENT_ID.match(event):
        raise ServiceError(400, "event: an event's id (12 hexadecimal digits)")
    if action not in ACTIONS:
        raise ServiceError(400, f"action must be one of {', '.join(ACTIONS)}")
    path = ACTIONS[action]
    if action == "open":
        user = body.get("user")
        if not isinstance(user, str) or not USER_NAME.match(user):
            raise ServiceError(400, "user: a participant's hub user name")
        return event, path + quote(user, safe=""), None
    if action == "message":
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ServiceError(400, "a message needs a non-empty 'text'")
        if len(text) > MAX_MESSAGE:
            raise ServiceError(400, f"a message is at most {MAX_MESSAGE} characters")
        return event, path, {"text": text}
    return event, path, None


def _picked(item: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: item.get(key) for key in fields} if isinstance(item, dict) else {}


def _event_view(event: Mapping[str, Any], view: Any) -> dict[str, Any]:
    """What the panel shows of one event: its fields, participants' rows and messages."""
    view = view if isinstance(view, dict) else {}
    return {
        **_picked(event, EVENT_FIELDS),
        "material": bool(event.get("material")),
        "participants": [_picked(row, ROW_FIELDS) for row in view.get("participants", [])],
        "messages": [_picked(m, MESSAGE_FIELDS) for m in view.get("messages", [])],
    }


def _ended(event: Mapping[str, Any], now: datetime) -> bool:
    try:
        end = datetime.fromisoformat(str(event.get("end")))
    except ValueError:
        return False
    return (end if end.tzinfo else end.replace(tzinfo=UTC)) <= now


class WorkshopManager(LoggingConfigurable):
    """Asks the hub's events API for this server's user (see the module's docstring)."""

    timeout = Float(
        60.0,
        config=True,
        help="""Seconds to wait for the hub's events API before answering 502 (default 60:
        *Stop all* and *End event* wait until every participant's server has stopped).""",
    )

    messages_refresh_seconds = Int(
        30,
        config=True,
        help="""Seconds between two checks for instructors' messages in every user's
        JupyterLab (default 30; one small request to the hub each, also for users in no
        event).""",
    )

    instructor_refresh_seconds = Int(
        10,
        config=True,
        help="""Seconds between two refreshes of the instructor's *Workshop* panel
        (default 10, as the hub's instructor page).""",
    )

    environ = AnyTrait(
        help="The server's environment (a mapping); the process environment unless a test sets it."
    )

    def _environ_default(self) -> Mapping[str, str]:
        return dict(os.environ)

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def _hub(self, method: str, path: str, body: Any = None) -> Any:
        api = self.environ.get("JUPYTERHUB_API_URL", "").strip().rstrip("/")
        token = self.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not api.startswith(("http://", "https://")) or not token:
            raise ServiceError(503, "This server does not run under a hub: no workshops.")
        request = HTTPRequest(
            f"{api}/continuum/events{path}",
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            body=json.dumps(body if body is not None else {}) if method == "POST" else None,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
        )
        return await fetch_json(request, what="The hub", key="message", refusal=refusal)

    async def messages(self, after: str) -> dict[str, Any]:
        """The messages of the user's running events newer than ``after`` (oldest first)."""
        answer = await self._hub("GET", f"/messages?after={message_after(after)}")
        found = answer.get("messages") if isinstance(answer, dict) else None
        return {
            "messages": [_picked(m, MESSAGE_FIELDS) for m in found or []],
            "refresh_seconds": self.messages_refresh_seconds,
        }

    async def events(self) -> dict[str, Any]:
        """The user's events not yet ended (soonest first), each with its participants'
        states and its messages; an empty list for a user who instructs none."""
        listed = await self._hub("GET", "")
        now = self.now()
        events = [
            e
            for e in (listed or {}).get("events", [])
            if isinstance(e, dict) and EVENT_ID.match(str(e.get("id"))) and not _ended(e, now)
        ]
        views = await asyncio.gather(*(self._hub("GET", f"/{e['id']}/instructor") for e in events))
        return {
            "events": [_event_view(e, v) for e, v in zip(events, views, strict=True)],
            "refresh_seconds": self.instructor_refresh_seconds,
        }

    async def act(self, body: Mapping[str, Any]) -> Any:
        """Do the panel's action on one of the user's events; the hub's answer.

        Raises
        ------
        ServiceError
            400 for a bad request (nothing is sent), the hub's 400/403/404/409, else 502.
        """
        event, path, payload = action_request(body)
        answer = await self._hub("POST", f"/{event}/{path}", payload)
        self.log.info("continuum_lab: workshop %s of event %s", body.get("action"), event)
        return answer if answer is not None else {}
