"""Guest seats of workshop events: single-use codes, guest hub users and their pool accounts.

An instructor asks for N codes of an event (``POST /hub/api/continuum/events/{id}/guest-codes``);
each is 128 random bits, shown once and stored only as its SHA-256 (:class:`GuestStore`).  A
code signs one person in as a new hub user ``guest-<random>`` during the event's window
(:mod:`.join`); the code is then spent.  Checks compare every stored hash of the event with
:func:`hmac.compare_digest`, so answer times say nothing about how close a forged code came,
and :class:`RateLimiter` bounds attempts per address and per event.

A guest's POSIX account comes from the pool :attr:`WorkshopAccountMapper.guest_pool` through
the existing lease table of :class:`~continuum_spawners.account_map.AccountMapper`; at the
event's end :func:`end_guests` releases the leases, archives or empties the guests' homes and
deletes the guest hub users (through a callable the hub side provides).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import Engine
from traitlets import Dict, Enum, TraitError, validate

from continuum_spawners.account_map import AccountMapper, policy_from
from continuum_spawners.accounts import AccountPolicy, NoAccountError
from continuum_spawners.sites import Site

GUEST_PREFIX = "guest-"
#: most codes one request may make
MAX_CODES = 200

metadata = MetaData()
guest_codes = Table(
    "continuum_event_guest_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("event_id", String(12), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("used_by", String(255), nullable=True),
    Column("used_at", DateTime(timezone=True), nullable=True),
)
guests = Table(
    "continuum_event_guests",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("event_id", String(12), nullable=False, index=True),
    Column("site", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def hash_code(code: str) -> str:
    """The stored form of a guest code (the codes are random: no slow hash is needed)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def new_guest_name() -> str:
    """A fresh guest hub username: ``guest-`` and 40 random bits (a POSIX-safe hub name)."""
    return GUEST_PREFIX + secrets.token_hex(5)


class GuestStore:
    """Guest codes (hashed) and guest users of events, in the events' database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)
        # one redemption at a time per process: the UPDATE … WHERE used_by IS NULL guards
        # between processes too, this only keeps SQLite's writers from queueing
        self._lock = threading.Lock()

    def add_codes(self, event_id: str, count: int) -> list[str]:
        """``count`` new codes of ``event_id``; only their hashes are kept."""
        codes = [secrets.token_urlsafe(16) for _ in range(count)]
        now = datetime.now(UTC)
        rows = [{"code_hash": hash_code(c), "event_id": event_id, "created_at": now} for c in codes]
        with self.engine.begin() as db:
            db.execute(insert(guest_codes), rows)
        return codes

    def counts(self, event_id: str) -> tuple[int, int]:
        """(codes made, codes used) of ``event_id``."""
        with self.engine.connect() as db:
            rows = list(db.execute(select(guest_codes.c.used_by).where(
                guest_codes.c.event_id == event_id)))  # fmt: skip
        return len(rows), sum(1 for r in rows if r.used_by is not None)

    def _find(self, db: Any, event_id: str, code: str) -> Any:
        wanted = hash_code(code)
        rows = list(db.execute(select(guest_codes).where(guest_codes.c.event_id == event_id)))
        match = None
        for row in rows:  # every hash compared, in constant time each
            if hmac.compare_digest(row.code_hash, wanted):
                match = row
        return match

    def check(self, event_id: str, code: str) -> str:
        """What :meth:`redeem` would answer, without spending the code."""
        with self.engine.connect() as db:
            match = self._find(db, event_id, code)
        if match is None:
            return "unknown"
        return "ok" if match.used_by is None else "used"

    def redeem(self, event_id: str, code: str, username: str) -> str:
        """Spend ``code`` of ``event_id`` for ``username``: ``"ok"``, ``"used"`` or
        ``"unknown"`` (forged, or another event's)."""
        with self._lock, self.engine.begin() as db:
            match = self._find(db, event_id, code)
            if match is None:
                return "unknown"
            done = db.execute(
                update(guest_codes)
                .where(guest_codes.c.code_hash == match.code_hash, guest_codes.c.used_by.is_(None))
                .values(used_by=username, used_at=datetime.now(UTC))
            )
            return "ok" if done.rowcount == 1 else "used"

    def add_guest(self, event_id: str, site: str, username: str) -> None:
        with self.engine.begin() as db:
            db.execute(
                insert(guests).values(
                    username=username, event_id=event_id, site=site, created_at=datetime.now(UTC)
                )
            )

    def guest(self, username: str) -> tuple[str, str] | None:
        """(event id, site) of guest ``username``, or ``None`` for anyone else."""
        if not username.startswith(GUEST_PREFIX):
            return None
        with self.engine.connect() as db:
            row = db.execute(select(guests).where(guests.c.username == username)).first()
        return (row.event_id, row.site) if row else None

    def guests_of(self, event_id: str) -> list[str]:
        with self.engine.connect() as db:
            query = select(guests.c.username).where(guests.c.event_id == event_id)
            return [row.username for row in db.execute(query)]

    def forget(self, event_id: str, username: str | None = None) -> None:
        """Drop the guest ``username`` (``None``: all guests and codes) of ``event_id``."""
        with self.engine.begin() as db:
            query = sql_delete(guests).where(guests.c.event_id == event_id)
            if username is not None:
                query = query.where(guests.c.username == username)
            db.execute(query)
            if username is None:
                db.execute(sql_delete(guest_codes).where(guest_codes.c.event_id == event_id))


class RateLimiter:
    """At most ``limit`` attempts per key in any ``window`` seconds (sliding window)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, *keys: str, now: float | None = None) -> bool:
        """Record an attempt under each of ``keys``; ``False`` when any is over its limit
        (a refused attempt counts too: hammering keeps the door shut)."""
        now = time.monotonic() if now is None else now
        allowed = True
        with self._lock:
            for key in keys:
                hits = self._hits.setdefault(key, deque())
                while hits and hits[0] <= now - self.window:
                    hits.popleft()
                allowed = allowed and len(hits) < self.limit
                hits.append(now)
            if len(self._hits) > 10_000:  # forget idle keys: addresses are many
                for key in [
                    k for k, h in self._hits.items() if not h or h[-1] <= now - self.window
                ]:
                    del self._hits[key]
        return allowed


class WorkshopAccountMapper(AccountMapper):
    """:class:`~continuum_spawners.account_map.AccountMapper` that gives guests of workshop
    events an account of :attr:`guest_pool` (leased like any pool account)."""

    guest_pool = Dict(
        config=True,
        help="""The pool guests of workshop events get their POSIX account from, at every site
        (``{"prefix": "guest", "first": 1, "last": 40}`` or ``{"accounts": [...]}``).  Default
        (empty): guests have no account, so guest seats cannot start servers.""",
    )

    @validate("guest_pool")
    def _validate_guest_pool(self, proposal: dict[str, Any]) -> dict[str, Any]:
        value = proposal["value"]
        if value:
            if "policy" in value:
                raise TraitError("WorkshopAccountMapper.guest_pool is a pool: leave out policy")
            policy_from({"policy": "pool", **value}, "WorkshopAccountMapper.guest_pool")
        return value

    guest_lookup = Enum(
        ("events", "leases"),
        "events",
        config=True,
        help="""How guests are recognised: ``events`` (the hub: its events' database) or
        ``leases`` (the services' processes, which the hub configures so: a ``guest-…`` user
        holding a lease of :attr:`guest_pool` at the site, made when their server started
        there; services never lease a guest a new account).""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: where guests are looked up (default: the hub's events' database)
        self.guests: GuestStore | None = None

    def guest_policy(self) -> AccountPolicy | None:
        if not self.guest_pool:
            return None
        return policy_from({"policy": "pool", **self.guest_pool}, "guest_pool")

    def is_guest(self, username: str) -> bool:
        """Whether ``username`` is a guest of a workshop event of this hub."""
        if not username.startswith(GUEST_PREFIX):
            return False
        if self.guests is None:
            # the guests live beside the hub's events (imported here: the spawner side
            # loads this class without the hub's handlers)
            from .join import guest_store
            from .manager import EventManager

            self.guests = guest_store(EventManager.instance(config=self.config))
        return self.guests.guest(username) is not None

    def resolve(self, username: str, site: Site, allocate: bool) -> str | None:
        policy = self.guest_policy()
        if self.guest_lookup == "leases":
            if policy is not None and username.startswith(GUEST_PREFIX):
                leased = self.store.leases(site.name).get(username)
                if leased in policy.accounts:
                    return leased
            return super().resolve(username, site, allocate)
        if not self.is_guest(username):
            return super().resolve(username, site, allocate)
        if policy is None:
            return None
        account = self.store.lease(site.name, username, policy.accounts, allocate)
        if account is None:
            self.log.warning("Guest pool at %s is exhausted (asked by %s)", site.name, username)
            raise NoAccountError("All guest accounts are in use; ask the instructor")
        if allocate:
            self.log.info("Guest %s has account %s at %s", username, account, site.name)
        return account


__all__ = [
    "GUEST_PREFIX",
    "GuestStore",
    "RateLimiter",
    "WorkshopAccountMapper",
    "hash_code",
    "new_guest_name",
]
