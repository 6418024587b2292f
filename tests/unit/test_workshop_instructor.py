"""The instructor's view (``continuum_hub.workshops.instructor``): participants' server states,
the attendance CSV, the stored messages and the event's shares.

Spawners are stand-ins with the attributes JupyterHub's spawner wrappers and ``SiteSpawner``
have (``pending``, ``ready``, ``job_status``, ``request``, ``orm_spawner.last_activity``); the
messages live in a real SQLite event store and the shares in JupyterHub's own ORM.  The view
served by a hub with real Slurm jobs is tested in ``tests/integration/test_workshop_sharing.py``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from test_workshop_events import make_event_of

from continuum_hub.workshops.instructor import (
    Messages,
    attendance_csv,
    event_spawner,
    joined_at,
    open_share,
    participant_rows,
    revoke_event_shares,
    server_state,
)
from continuum_hub.workshops.instructor_api import API_ROUTES, PAGE_ROUTES, TEMPLATES
from continuum_hub.workshops.model import EventError
from continuum_hub.workshops.store import EventStore

pytestmark = pytest.mark.workshops

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def spawner(
    pending: str | None = None,
    ready: bool = False,
    job_status: str = "",
    idle: float | None = None,
    request: Any = None,
    name: str = "",
) -> SimpleNamespace:
    last = None if idle is None else (NOW - timedelta(minutes=idle)).replace(tzinfo=None)
    return SimpleNamespace(
        pending=pending,
        ready=ready,
        active=bool(pending or ready),
        job_status=job_status,
        job_id="4711",
        request=request,
        name=name,
        orm_spawner=SimpleNamespace(last_activity=last),
    )


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        pytest.param(None, ("stopped", ""), id="never-started"),
        pytest.param(
            spawner("spawn", job_status="PENDING Reservation"),
            ("queued", "Reservation"),
            id="queued-with-reason",
        ),
        pytest.param(spawner("spawn", job_status="PENDING"), ("queued", "PENDING"), id="queued"),
        pytest.param(
            spawner("spawn", job_status="RUNNING"), ("starting", "RUNNING"), id="starting"
        ),
        pytest.param(spawner("spawn"), ("starting", ""), id="starting-before-submit"),
        pytest.param(spawner(ready=True, idle=2), ("running", ""), id="running"),
        pytest.param(spawner(ready=True, idle=25), ("idle", "25 min"), id="idle"),
        pytest.param(spawner("stop", ready=True), ("stopping", ""), id="stopping"),
        pytest.param(spawner(job_status="TIMEOUT"), ("stopped", "TIMEOUT"), id="ended"),
    ],
)
def test_server_state(server: Any, expected: tuple[str, str]) -> None:
    assert server_state(server, NOW, idle_minutes=10) == expected


def test_event_spawner_prefers_the_server_on_the_events_partition() -> None:
    ev = make_event_of("teacher")
    elsewhere = spawner(ready=True, request=SimpleNamespace(site="beta", partition="cpu"))
    there = spawner(
        ready=True, request=SimpleNamespace(site=ev.site, partition=ev.partition), name="ws"
    )
    user = SimpleNamespace(spawners={"": elsewhere, "ws": there}, orm_spawners={"": 1, "ws": 2})
    assert event_spawner(user, ev) is there
    only_default = SimpleNamespace(spawners={"": elsewhere}, orm_spawners={"": 1})
    assert event_spawner(only_default, ev) is elsewhere
    assert event_spawner(SimpleNamespace(spawners={}, orm_spawners={}), ev) is None
    assert event_spawner(None, ev) is None


def test_rows_and_attendance_csv(tmp_path: Path) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    ev = make_event_of("teacher")
    store.add(ev)
    for name in ("bob", "carol", "=cmd"):
        store.add_participant(ev.id, name)
    ev = store.get(ev.id)
    assert ev is not None
    users = {
        "bob": SimpleNamespace(
            spawners={"": spawner("spawn", job_status="PENDING Resources")}, orm_spawners={"": 1}
        ),
        "carol": SimpleNamespace(spawners={"": spawner(ready=True, idle=1)}, orm_spawners={"": 1}),
        "=cmd": None,
    }
    joined = joined_at(store.engine, ev.id)
    assert set(joined) == {"bob", "carol", "=cmd"}
    rows = participant_rows(ev, users, joined, NOW)
    assert [(r.user, r.state, r.detail, r.job_id) for r in rows] == [
        ("bob", "queued", "Resources", "4711"),
        ("carol", "running", "", "4711"),
        ("=cmd", "stopped", "", ""),
    ]
    lines = list(csv.reader(io.StringIO(attendance_csv(ev, rows))))
    assert lines[0] == ["event", "title", "user", "joined", "state", "last_activity"]
    assert [line[2] for line in lines[1:]] == ["bob", "carol", "'=cmd"]  # no formula
    assert lines[2][4] == "running" and lines[2][5].startswith("2026-12-05T09:59")
    assert all(line[0] == ev.id and line[1] == ev.title for line in lines[1:])


def test_messages_are_stored_per_event_and_read_after_an_id(tmp_path: Path) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    ev = make_event_of("teacher")
    other = replace(make_event_of("teacher"), id="0123456789ab", title="Other")
    messages = Messages(store.engine)
    first = messages.add(ev, "teacher", "  Open notebook 2  ", now=NOW)
    messages.add(other, "teacher", "not for ev", now=NOW)
    second = messages.add(ev, "teacher", "Break until 11:00", now=NOW)
    assert first["text"] == "Open notebook 2"
    got = messages.of([ev])
    assert [m["text"] for m in got] == ["Open notebook 2", "Break until 11:00"]
    assert got[0]["title"] == ev.title and got[0]["sent_at"] == NOW.isoformat()
    assert [m["id"] for m in messages.of([ev], after=first["id"])] == [second["id"]]
    assert messages.of([]) == []
    # the same database, opened again (a restarted hub), still has them
    assert len(Messages(EventStore(str(store.engine.url)).engine).of([ev, other])) == 3
    for bad in ("", "   ", None, 42, "x" * 2001):
        with pytest.raises(EventError):
            messages.add(ev, "teacher", bad)


def test_open_share_and_revocation_at_the_end() -> None:
    db = orm.new_session_factory("sqlite:///:memory:")()
    teacher, bob = orm.User(name="teacher"), orm.User(name="bob")
    db.add_all([teacher, bob])
    db.commit()
    db.add_all([orm.Spawner(user=bob, name=""), orm.Spawner(user=bob, name="other")])
    db.commit()
    share = open_share(db, bob.orm_spawners[""], teacher)
    assert share.scopes == ["access:servers!server=bob/"]
    # the participant sees it on their sharing page: a share of their server with the teacher
    assert [s.user.name for s in bob.orm_spawners[""].shares] == ["teacher"]
    bob_own = orm.Share.grant(db, bob.orm_spawners["other"], teacher)  # bob's own choice
    assert revoke_event_shares(db, [bob], teacher) == 2
    assert orm.Share.find(db, bob.orm_spawners[""], teacher) is None
    assert bob_own is not None and revoke_event_shares(db, [bob], teacher) == 0
    db.close()


def test_routes_and_template() -> None:
    paths = [route for route, _ in API_ROUTES + PAGE_ROUTES]
    assert r"/api/continuum/events/messages" in paths
    assert r"/continuum/events/([0-9a-f]{12})/instructor" in paths
    assert (TEMPLATES / "continuum-instructor.html").is_file()
