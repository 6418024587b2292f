"""Where events live: two SQLAlchemy 2 Core tables in the hub's database or beside it.

``continuum_events`` holds one row per event (the fields the hub searches on as columns, the
rest as JSON), ``continuum_event_participants`` the users an instructor added.  The URL is
:func:`events_url` of the hub's ``db_url``: the hub's own PostgreSQL database (own tables), or
a SQLite file ``continuum-events.sqlite`` beside the hub's SQLite file, created 0600 (it holds
join codes).  One :class:`EventStore` per URL and process (:func:`store_for`).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url

from continuum_spawners.private_file import private_engine

from .model import Event, Profile

DEFAULT_FILE = "continuum-events.sqlite"

metadata = MetaData()
events = Table(
    "continuum_events",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("join_code", String(64), nullable=False, unique=True),
    Column("site", String(64), nullable=False),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end", DateTime(timezone=True), nullable=False, index=True),
    Column("reservation_state", String(16), nullable=False),
    Column("data", JSON, nullable=False),
)
participants = Table(
    "continuum_event_participants",
    metadata,
    Column("event_id", String(12), ForeignKey("continuum_events.id"), primary_key=True),
    Column("user", String(255), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)
#: event fields kept in the JSON column
_DATA = (
    "title",
    "seats",
    "partition",
    "material",
    "vos",
    "federated",
    "guest_seats",
    "external_reservation",
    "reservation_error",
    "reservation_users",
    "created_at",
)


def events_url(hub_db_url: str) -> str:
    """The hub's PostgreSQL database (psycopg 3), else a SQLite file beside the hub's."""
    url = make_url(hub_db_url)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    database = url.database if url.get_backend_name() == "sqlite" else None
    folder = Path(database).absolute().parent if database and database != ":memory:" else Path()
    return f"sqlite:///{folder.absolute() / DEFAULT_FILE}"


def _utc(when: datetime) -> datetime:
    # SQLite gives naive values back: they were stored in UTC
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _row(ev: Event) -> dict[str, Any]:
    data = {key: getattr(ev, key) for key in _DATA}
    data["created_at"] = ev.created_at.isoformat()
    data["profiles"] = [p.__dict__ for p in ev.profiles]
    return {
        "id": ev.id,
        "owner": ev.owner,
        "join_code": ev.join_code,
        "site": ev.site,
        "start": ev.start,
        "end": ev.end,
        "reservation_state": ev.reservation_state,
        "data": data,
    }


def _event(row: Any, people: tuple[str, ...]) -> Event:
    data = dict(row.data)
    return Event(
        id=row.id,
        owner=row.owner,
        join_code=row.join_code,
        site=row.site,
        start=_utc(row.start),
        end=_utc(row.end),
        reservation_state=row.reservation_state,
        profiles=tuple(Profile(**p) for p in data.pop("profiles")),
        created_at=datetime.fromisoformat(data.pop("created_at")),
        vos=tuple(data.pop("vos")),
        reservation_users=tuple(data.pop("reservation_users")),
        participants=people,
        **data,
    )


class EventStore:
    """Events and their participants in the database at ``url`` (tables made if missing)."""

    def __init__(self, url: str) -> None:
        # SQLite: 0600 (join codes), WAL and a busy timeout: the REST handlers and the
        # reconciler write from the same process, a second hub may read
        self.engine: Engine = private_engine(url)
        metadata.create_all(self.engine)

    def _people(self, db: Any, event_ids: list[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {i: [] for i in event_ids}
        query = select(participants).where(participants.c.event_id.in_(event_ids))
        for row in db.execute(query.order_by(participants.c.added_at)):
            found[row.event_id].append(row.user)
        return {key: tuple(value) for key, value in found.items()}

    def _load(self, query: Any) -> list[Event]:
        with self.engine.connect() as db:
            rows = list(db.execute(query))
            people = self._people(db, [r.id for r in rows])
            return [_event(row, people[row.id]) for row in rows]

    def add(self, ev: Event) -> None:
        with self.engine.begin() as db:
            db.execute(insert(events).values(**_row(ev)))

    def save(self, ev: Event) -> None:
        """Write ``ev``'s fields (not its participants) over the stored event."""
        row = _row(ev)
        del row["id"]
        with self.engine.begin() as db:
            db.execute(update(events).where(events.c.id == ev.id).values(**row))

    def get(self, event_id: str) -> Event | None:
        found = self._load(select(events).where(events.c.id == event_id))
        return found[0] if found else None

    def by_code(self, code: str) -> Event | None:
        found = self._load(select(events).where(events.c.join_code == code))
        return found[0] if found else None

    def list(self, owner: str | None = None) -> list[Event]:
        """Events (of ``owner``; ``None``: everyone's), soonest first."""
        query = select(events).order_by(events.c.start, events.c.id)
        if owner is not None:
            query = query.where(events.c.owner == owner)
        return self._load(query)

    def current(self, now: datetime, ahead: datetime | None = None) -> list[Event]:
        """Events not yet ended, starting before ``ahead`` (``None``: any time)."""
        query = select(events).where(events.c.end > now).order_by(events.c.start)
        if ahead is not None:
            query = query.where(events.c.start <= ahead)
        return self._load(query)

    def ended_with_reservation(self, now: datetime) -> list[Event]:
        query = select(events).where(events.c.end <= now, events.c.reservation_state == "created")
        return self._load(query)

    def remove(self, event_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(participants).where(participants.c.event_id == event_id))
            db.execute(delete(events).where(events.c.id == event_id))

    def add_participant(self, event_id: str, user: str) -> bool:
        """Add ``user``; ``False`` when they were already in."""
        with self.engine.begin() as db:
            key = (participants.c.event_id == event_id) & (participants.c.user == user)
            if db.execute(select(participants.c.user).where(key)).first() is not None:
                return False
            now = datetime.now(UTC)
            db.execute(insert(participants).values(event_id=event_id, user=user, added_at=now))
            return True

    def remove_participant(self, event_id: str, user: str) -> bool:
        with self.engine.begin() as db:
            key = (participants.c.event_id == event_id) & (participants.c.user == user)
            return db.execute(delete(participants).where(key)).rowcount > 0

    def events_of(self, user: str, now: datetime) -> list[Event]:
        """Running events ``user`` takes part in."""
        query = (
            select(events)
            .join(participants, participants.c.event_id == events.c.id)
            .where(participants.c.user == user, events.c.start <= now, events.c.end > now)
        )
        return self._load(query)


_STORES: dict[str, EventStore] = {}
_LOCK = threading.Lock()


def store_for(url: str) -> EventStore:
    """The process-wide store for ``url``."""
    with _LOCK:
        if url not in _STORES:
            _STORES[url] = EventStore(url)
        return _STORES[url]


__all__ = ["DEFAULT_FILE", "EventStore", "events_url", "store_for"]
