"""Joining a workshop event through its link, as a federated user or on a guest seat.

Routes (our authenticator's :meth:`get_handlers` adds them beside the OpenID providers; the
guest codes' REST route comes from :func:`install_guest_code_api`):

``/hub/continuum/join/<code>``
    Not signed in: the federated sign-in (choice of providers), then back here.  Signed in and
    allowed (a member of one of the event's VOs, or anyone federated where the event says so):
    a participant of the event (the manager's records) and a member of the hub group
    ``workshop-<id>`` until the event ends, then its start page.  A full event: a page that
    links to the waiting room ``/hub/continuum/events/<id>/waiting``.
``/hub/continuum/join/<code>/guest?code=<guest code>`` (or the form there)
    A guest seat: no federated sign-in; a new hub user ``guest-<random>`` whose account comes
    from the guest pool (:class:`~.guests.WorkshopAccountMapper`).  Attempts are rate limited
    per address and per event; each refusal is logged without the code.
``/hub/continuum/join/<code>/start``
    The start page: the event's profiles only; a POST starts the server with the one chosen.
``POST /hub/api/continuum/events/{id}/guest-codes`` ``{"count": N}``
    N new guest codes of the caller's event, shown this once (201).

:func:`end_of_events` runs beside the reservations' task: at an event's end its guests are
deleted (servers stopped, leases released, homes archived or emptied) and its group removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub import apihandlers, orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat
from traitlets import Float, Integer, Unicode
from traitlets.config import SingletonConfigurable

from .api import PREFIX, _EventsBase
from .guests import (
    GUEST_PREFIX,
    MAX_CODES,
    GuestStore,
    RateLimiter,
    new_guest_name,
)
from .manager import EventManager
from .model import Event, EventError
from .waiting import waiting_url

CODE_ROUTE = r"([A-Za-z0-9_-]{1,64})"
TEMPLATE = "continuum-join.html"
TEMPLATES = Path(__file__).parent / "templates"
GROUP_PREFIX = "workshop-"
#: the model key by which a sign-in through an event's link tells ``check_allowed`` about it
JOINING = "continuum_joining_event"
_JOIN_PATH = re.compile(r"/continuum/join/" + CODE_ROUTE + r"(?:/start)?/?$")


class JoinSettings(SingletonConfigurable):
    """How joining and guest seats behave (one per hub)."""

    attempts_per_address = Integer(
        10, config=True, help="Guest code attempts one address may make per window (default 10)."
    )
    attempts_per_event = Integer(
        100, config=True, help="Guest code attempts one event accepts per window (default 100)."
    )
    attempt_window = Float(
        300.0, config=True, help="Seconds of the attempts' sliding window (default 300)."
    )
    guest_homes = Unicode(
        "archive",
        config=True,
        help="""What happens to a guest's home at the event's end: ``archive`` (a .tar.gz under
        ``guest_archive_dir``, then emptied), ``remove`` (emptied) or ``keep``.""",
    )
    guest_archive_dir = Unicode(
        "continuum-guest-homes",
        config=True,
        help="Folder of the archived guest homes (relative: the hub's working directory).",
    )

    end_interval = Float(
        60.0,
        config=True,
        help="Seconds between the checks that end the guests of ended events (default 60).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limiter = RateLimiter(self.attempts_per_address, self.attempt_window)
        self.event_limiter = RateLimiter(self.attempts_per_event, self.attempt_window)


_GUEST_STORES: dict[int, GuestStore] = {}


def guest_store(manager: EventManager) -> GuestStore:
    """The guest tables beside the manager's events (one per store)."""
    key = id(manager.store)
    if key not in _GUEST_STORES:
        _GUEST_STORES[key] = GuestStore(manager.store.engine)
    return _GUEST_STORES[key]


def group_name(ev: Event) -> str:
    return GROUP_PREFIX + ev.id


def event_groups(username: str) -> set[str]:
    """The groups of the running events ``username`` takes part in, which the authenticator
    keeps when it syncs groups from entitlements (none where the hub has no events)."""
    if not EventManager.initialized():
        return set()
    manager = EventManager.instance()
    return {group_name(ev) for ev in manager.store.events_of(username, datetime.now(UTC))}


def is_event_guest(username: str) -> bool:
    """Whether ``username`` signed in on a guest seat (no tokens to refresh)."""
    if not username.startswith(GUEST_PREFIX) or not EventManager.initialized():
        return False
    return guest_store(EventManager.instance()).guest(username) is not None


def may_join(ev: Event, groups: set[str]) -> bool:
    """Whether a federated user in ``groups`` may join ``ev`` (guests come through codes)."""
    return ev.federated or bool(groups & set(ev.vos))


def event_joined_by(next_url: str | None, groups: set[str]) -> Event | None:
    """The event whose join link a sign-in returns to (``next_url``), when that event would
    let a federated user in ``groups`` join now; else ``None``."""
    if not next_url or not EventManager.initialized():
        return None
    found = _JOIN_PATH.search(urlparse(next_url).path)
    if found is None:
        return None
    ev = EventManager.instance().store.by_code(found.group(1))
    if ev is None or not may_join(ev, groups) or window_refusal(ev, datetime.now(UTC)):
        return None
    return ev


def admits(username: str, auth_model: dict[str, Any] | None) -> bool:
    """Whether workshops let ``username`` in beyond the authenticator's own rules (e.g.
    ``allowed_groups``): a sign-in through the link of an event open to them (marked
    :data:`JOINING` by the authenticator), or a participant while their event runs."""
    if auth_model and auth_model.get(JOINING):
        return True
    return bool(event_groups(username))


def window_refusal(ev: Event, now: datetime) -> str | None:
    if now < ev.start:
        return f"This event opens at {ev.start:%Y-%m-%d %H:%M} UTC; come back then."
    if now >= ev.end:
        return "This event has ended."
    return None


class _JoinBase(BaseHandler):
    def manager(self) -> EventManager:
        manager = EventManager.instance(config=self.settings["config"])
        manager.start()
        return manager

    def settings_(self) -> JoinSettings:
        return JoinSettings.instance(config=self.settings["config"])

    def event(self, code: str) -> Event:
        ev = self.manager().store.by_code(code)
        if ev is None:
            raise web.HTTPError(404, "No event has this link.")
        return ev

    async def page(self, status: int, state: str, ev: Event | None, **ns: Any) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        model = ev.as_json() if ev is not None else None
        html = await self.render_template(TEMPLATE, state=state, event=model, **ns)
        self.finish(html)

    async def refuse(self, status: int, ev: Event | None, why: str, message: str) -> None:
        self.log.warning(
            "Join of event %s refused (%d) for %s from %s: %s",
            ev.id if ev else "?",
            status,
            getattr(self.current_user, "name", "anonymous"),
            self.request.remote_ip,
            why,
        )
        waiting = None
        if status == 409 and ev is not None:
            waiting = waiting_url(self.hub.base_url, ev.id)
        await self.page(status, "refused", ev, message=message, waiting_url=waiting)

    def admit(self, ev: Event, user: Any) -> None:
        """Make ``user`` a participant of ``ev`` and a member of its group (EventError: full)."""
        if self.manager().add_participant(ev, user.name):
            self.log.info("%s joined event %s", user.name, ev.id)
        group = orm.Group.find(self.db, group_name(ev))
        if group is None:
            group = orm.Group(name=group_name(ev))
            self.db.add(group)
        if group not in user.orm_user.groups:
            user.orm_user.groups.append(group)
        self.db.commit()

    def start_url(self, code: str) -> str:
        return url_path_join(self.hub.base_url, "continuum/join", code, "start")


class JoinHandler(_JoinBase):
    """``/hub/continuum/join/<code>``: sign in if needed, join, go to the start page."""

    async def get(self, code: str) -> None:
        user = self.current_user
        if user is None:
            login = url_concat(self.settings["login_url"], {"next": self.request.uri})
            self.redirect(login)
            return
        ev = self.event(code)
        guest = guest_store(self.manager()).guest(user.name) is not None
        if guest and user.name not in ev.participants:
            await self.refuse(403, ev, "guest of another event", "Guests join one event only.")
            return
        if not guest and not may_join(ev, {g.name for g in user.groups}):
            await self.refuse(403, ev, "not allowed", "This event is not open to you.")
            return
        refusal = window_refusal(ev, datetime.now(UTC))
        if refusal:
            await self.refuse(403, ev, "outside the window", refusal)
            return
        try:
            self.admit(ev, user)
        except EventError as exc:
            await self.refuse(exc.status, ev, str(exc), "This event is full.")
            return
        self.redirect(self.start_url(code))


class GuestJoinHandler(_JoinBase):
    """``/hub/continuum/join/<code>/guest``: the guest form, or a guest code redeemed."""

    async def get(self, code: str) -> None:
        # ``code``: JupyterHub's access log scrubs it (``c`` is read too, for short links)
        guest_code = self.get_argument("code", "") or self.get_argument("c", "")
        if not guest_code:
            ev = self.event(code)
            url = url_path_join(self.hub.base_url, "continuum/join", code, "guest")
            await self.page(200, "guest", ev, guest_url=url)
            return
        settings = self.settings_()
        # the event's key is a hash: a forged join code adds no new key per attempt
        event_key = "event:" + hashlib.sha256(code.encode()).hexdigest()[:16]
        # both limiters count this attempt: no short-circuit
        by_address = settings.limiter.allow("ip:" + self.request.remote_ip)
        by_event = settings.event_limiter.allow(event_key)
        if not (by_address and by_event):
            await self.refuse(429, None, "too many guest code attempts", "Too many attempts.")
            return
        ev = self.manager().store.by_code(code)
        if ev is None or len(guest_code) > 64:
            await self.refuse(403, None, "forged join or guest code", "This code is not valid.")
            return
        refusal = window_refusal(ev, datetime.now(UTC))
        if refusal or not ev.guest_seats:
            await self.refuse(403, ev, "guest outside the window", refusal or "No guest seats.")
            return
        store = guest_store(self.manager())
        name = new_guest_name()
        # a bad code is told so first; a good one is spent only when a seat is free
        result = await asyncio.to_thread(store.check, ev.id, guest_code)
        if result == "ok":
            if len(store.guests_of(ev.id)) >= ev.guest_seats or len(ev.participants) >= ev.seats:
                await self.refuse(409, ev, "guest seats taken", "All seats are taken.")
                return
            result = await asyncio.to_thread(store.redeem, ev.id, guest_code, name)
        if result != "ok":
            why = "reused guest code" if result == "used" else "forged guest code"
            await self.refuse(403, ev, why, "This code is not valid.")
            return
        store.add_guest(ev.id, ev.site, name)
        user = self.user_from_username(name)
        try:
            self.admit(ev, user)
        except EventError as exc:
            await self.refuse(exc.status, ev, str(exc), "This event is full.")
            return
        self.set_login_cookie(user)
        self.log.info("Guest %s signed in for event %s", name, ev.id)
        self.redirect(self.start_url(code))


class StartHandler(_JoinBase):
    """``/hub/continuum/join/<code>/start``: the event's profiles; POST starts the server."""

    def participant(self, code: str) -> tuple[Any, Event]:
        ev = self.event(code)
        if self.current_user.name not in ev.participants:
            raise web.HTTPError(403, "Join the event through its link first.")
        return self.current_user, ev

    @web.authenticated
    async def get(self, code: str) -> None:
        user, ev = self.participant(code)
        guest = guest_store(self.manager()).guest(user.name) is not None
        await self.page(200, "start", ev, start_url=self.start_url(code), guest=guest)

    @web.authenticated
    async def post(self, code: str) -> None:
        user, ev = self.participant(code)
        chosen = self.get_body_argument("profile", ev.profiles[0].name)
        profile = next((p for p in ev.profiles if p.name == chosen), None)
        if profile is None:
            raise web.HTTPError(400, "The event has no such profile.")
        if window_refusal(ev, datetime.now(UTC)):
            raise web.HTTPError(403, "The event is not running.")
        spawner = user.spawner
        if not (spawner.active or spawner.pending):
            options = profile.user_options(ev.site, ev.partition)
            await self.spawn_single_user(user, options=options)
        self.redirect(url_path_join(self.hub.base_url, "spawn-pending", user.name))


class GuestCodesHandler(_EventsBase):
    """``POST /hub/api/continuum/events/{id}/guest-codes``: new guest codes, shown once."""

    @web.authenticated
    def post(self, event_id: str) -> None:
        ev = self.own(event_id)
        body = self.get_json_body() or {}
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CODES:
            self.refuse(EventError(f"count must be a whole number from 1 to {MAX_CODES}"))
        if not ev.guest_seats:
            self.refuse(EventError(f"event {ev.id} has no guest seats (access guest_seats)", 409))
        store = guest_store(self.manager())
        codes = store.add_codes(ev.id, count)
        made, used = store.counts(ev.id)
        self.log.info("%d guest codes made for event %s by %s", count, ev.id, self.caller().name)
        self.set_status(201)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"event": ev.id, "codes": codes, "made": made, "used": used}))


def join_handlers() -> list[tuple[str, type]]:
    """The join pages' routes, for the authenticator's ``get_handlers``."""
    return [
        (rf"/continuum/join/{CODE_ROUTE}", JoinHandler),
        (rf"/continuum/join/{CODE_ROUTE}/guest", GuestJoinHandler),
        (rf"/continuum/join/{CODE_ROUTE}/start", StartHandler),
    ]


def install_guest_code_api() -> None:
    """Add the guest codes' REST route to the hub's API (idempotent)."""
    route = PREFIX + r"/([0-9a-f]{12})/guest-codes"
    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] != route]
    handlers.insert(0, (route, GuestCodesHandler))
