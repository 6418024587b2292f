"""The instructor's view of an event (issue 13 item 5): participants' servers, messages, the end.

What the handlers of :mod:`.instructor_api` show and do, kept free of tornado so it is tested
directly:

* :func:`server_state` and :func:`participant_rows`: each participant's server as the instructor
  sees it: ``queued`` with Slurm's reason (from the spawner's last job status, e.g. ``PENDING
  Reservation``), ``starting``, ``running``, ``idle`` for N minutes, or ``stopped``.
* :class:`Messages`: the instructor's messages to all participants, stored beside the events
  (table ``continuum_event_messages``); participants read those of their running events.
* :func:`open_share`: the instructor opens a participant's server through JupyterHub's sharing.
  **Policy:** joining an event lets its instructors (the event's owner and hub admins) into the
  participant's servers for the event's window; the participant is not asked each time (a
  workshop cannot wait for 60 clicks), the share is visible on the participant's sharing page
  (``/hub/continuum/sharing``: "who has access") and is revoked when the event ends
  (:func:`revoke_event_shares`).
* :func:`attendance_csv`: who joined when, and how far their server got, exported at the end.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from jupyterhub import orm
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.engine import Engine

from .model import Event, EventError
from .store import participants

#: longest message to participants (characters)
MAX_MESSAGE = 2000
#: minutes without activity after which a running server shows as idle
IDLE_MINUTES = 10.0

_metadata = MetaData()
messages = Table(
    "continuum_event_messages",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(12), nullable=False, index=True),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("author", String(255), nullable=False),
    Column("text", Text, nullable=False),
)


@dataclass(frozen=True)
class ParticipantRow:
    """One participant's line in the instructor's view."""

    user: str
    joined: str
    server: str
    state: str
    detail: str
    job_id: str
    last_activity: str


def _utc(value: datetime | None) -> datetime | None:
    """JupyterHub stores naive UTC times; the events' store aware ones."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def server_state(
    spawner: Any, now: datetime, idle_minutes: float = IDLE_MINUTES
) -> tuple[str, str]:
    """``(state, detail)`` of a server: ``queued`` (detail: Slurm's reason), ``starting``,
    ``running``, ``idle`` (detail: ``N min``), ``stopped`` (detail: the last job status)."""
    if spawner is None:
        return "stopped", ""
    status = str(getattr(spawner, "job_status", "") or "")
    if getattr(spawner, "pending", None) == "spawn":
        word, _, reason = status.partition(" ")
        if word.upper() in ("PENDING", "PD", "CONFIGURING"):
            return "queued", reason.strip() or word
        return "starting", status
    if getattr(spawner, "pending", None) == "stop":
        return "stopping", ""
    if not getattr(spawner, "ready", False):
        return "stopped", status
    orm_spawner = getattr(spawner, "orm_spawner", None)
    last = _utc(getattr(orm_spawner, "last_activity", None))
    if last is not None:
        minutes = (now - last).total_seconds() / 60
        if minutes >= idle_minutes:
            return "idle", f"{minutes:.0f} min"
    return "running", ""


def event_spawner(user: Any, ev: Event) -> Any:
    """The participant's server for ``ev``: the first one whose request ran on the event's site
    and partition, else their default server (``None`` when they never had one)."""
    if user is None:
        return None
    spawners = getattr(user, "spawners", {})
    for spawner in spawners.values():
        request = getattr(spawner, "request", None)
        if request is not None and (request.site, request.partition) == (ev.site, ev.partition):
            return spawner
    if "" in getattr(user, "orm_spawners", {}):
        return spawners[""]
    return None


def joined_at(engine: Engine, event_id: str) -> dict[str, datetime]:
    """When each participant joined ``event_id``."""
    query = select(participants.c.user, participants.c.added_at).where(
        participants.c.event_id == event_id
    )
    with engine.connect() as db:
        return {row.user: _utc(row.added_at) for row in db.execute(query)}  # type: ignore[misc]


def participant_rows(
    ev: Event,
    users: Mapping[str, Any],
    joined: Mapping[str, datetime],
    now: datetime,
    idle_minutes: float = IDLE_MINUTES,
) -> list[ParticipantRow]:
    """The instructor's table: one row per participant of ``ev`` (``users``: hub user wrappers
    by name, ``None`` for a participant the hub no longer knows)."""
    rows = []
    for name in ev.participants:
        spawner = event_spawner(users.get(name), ev)
        state, detail = server_state(spawner, now, idle_minutes)
        orm_spawner = getattr(spawner, "orm_spawner", None)
        last = _utc(getattr(orm_spawner, "last_activity", None))
        when = joined.get(name)
        rows.append(
            ParticipantRow(
                user=name,
                joined=when.isoformat(timespec="seconds") if when else "",
                server=getattr(spawner, "name", "") or "",
                state=state,
                detail=detail,
                job_id=str(getattr(spawner, "job_id", "") or "") if state != "stopped" else "",
                last_activity=last.isoformat(timespec="seconds") if last else "",
            )
        )
    return rows


def rows_json(rows: Iterable[ParticipantRow]) -> list[dict[str, str]]:
    return [asdict(row) for row in rows]


def attendance_csv(ev: Event, rows: Iterable[ParticipantRow]) -> str:
    """The attendance of ``ev`` as CSV (one line per participant, a header line first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event", "title", "user", "joined", "state", "last_activity"])
    for row in rows:
        # a name or title starting with = + - @ would be a formula in a spreadsheet
        cells = [ev.id, ev.title, row.user, row.joined, row.state, row.last_activity]
        writer.writerow([f"'{c}" if c[:1] in "=+-@" else c for c in cells])
    return out.getvalue()


class Messages:
    """Messages of instructors to their events' participants, in the events' database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)

    def add(self, ev: Event, author: str, text: Any, now: datetime | None = None) -> dict[str, Any]:
        if not isinstance(text, str) or not text.strip():
            raise EventError("a message needs a non-empty 'text'")
        if len(text) > MAX_MESSAGE:
            raise EventError(f"a message is at most {MAX_MESSAGE} characters")
        sent = now or datetime.now(UTC)
        with self.engine.begin() as db:
            result = db.execute(
                insert(messages).values(
                    event_id=ev.id, sent_at=sent, author=author, text=text.strip()
                )
            )
            (ident,) = result.inserted_primary_key or (0,)
        return {
            "id": ident,
            "event": ev.id,
            "sent_at": sent.isoformat(),
            "author": author,
            "text": text.strip(),
        }

    def of(self, events: Iterable[Event], after: int = 0) -> list[dict[str, Any]]:
        """Messages of ``events`` newer than message id ``after``, oldest first."""
        titles = {ev.id: ev.title for ev in events}
        if not titles:
            return []
        query = (
            select(messages)
            .where(messages.c.event_id.in_(list(titles)), messages.c.id > after)
            .order_by(messages.c.id)
        )
        with self.engine.connect() as db:
            return [
                {
                    "id": row.id,
                    "event": row.event_id,
                    "title": titles[row.event_id],
                    "sent_at": _utc(row.sent_at).isoformat(),  # type: ignore[union-attr]
                    "author": row.author,
                    "text": row.text,
                }
                for row in db.execute(query)
            ]


def open_share(db: Any, spawner: orm.Spawner, instructor: orm.User) -> orm.Share:
    """Let ``instructor`` into a participant's server (the event's policy, see the module)."""
    return orm.Share.grant(db, spawner, instructor)


def revoke_event_shares(
    db: Any, participant_users: Iterable[orm.User], instructor: orm.User
) -> int:
    """Revoke what :func:`open_share` granted ``instructor`` on the participants' servers."""
    revoked = 0
    for user in participant_users:
        for spawner in user.orm_spawners.values():
            if orm.Share.find(db, spawner, instructor) is not None:
                orm.Share.revoke(db, spawner, instructor)
                revoked += 1
    return revoked
