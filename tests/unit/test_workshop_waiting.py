"""The waiting room of a full event (issue 13, item 6): positions, first come first served, let
in when a seat frees, who may queue."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from continuum_hub.workshops.model import Event
from continuum_hub.workshops.store import EventStore
from continuum_hub.workshops.waiting import WaitingRoom, may_queue, waiting_url
from fixtures.workshops import running_event

pytestmark = pytest.mark.workshops


def event(**changes: object) -> Event:
    return running_event(**changes)


@pytest.fixture
def room(tmp_path) -> WaitingRoom:
    store = EventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    store.add(event())
    return WaitingRoom(store)


def test_positions_and_seats_freeing(room):
    ev = event()
    assert [room.enter(ev, name) for name in ("a", "b")] == [0, 0]
    assert room.store.get(ev.id).participants == ("a", "b")
    assert [room.enter(ev, name) for name in ("c", "d", "c")] == [1, 2, 1]
    assert room.enter(ev, "a") == 0  # already in: no queue
    assert room.queue(ev.id) == ["c", "d"]
    room.store.remove_participant(ev.id, "a")
    # the seat is c's: d still waits, then c comes back and is let in
    assert room.enter(ev, "d") == 2
    assert room.enter(ev, "c") == 0
    assert room.queue(ev.id) == ["d"]
    assert room.enter(ev, "d") == 1
    assert room.store.get(ev.id).participants == ("b", "c")
    # two seats free for one waiting person and one newcomer
    room.store.remove_participant(ev.id, "b")
    room.store.remove_participant(ev.id, "c")
    assert room.enter(ev, "e") == 0  # more free seats than people ahead
    assert room.enter(ev, "d") == 0
    assert room.queue(ev.id) == []
    assert room.leave(ev.id, "zz") is False
    room.enter(ev, "f")
    room.forget(ev.id)
    assert room.queue(ev.id) == []


def test_gone_people_leave_the_queue(room, monkeypatch):
    ev = event(id="ba9876543210", join_code="other", seats=1)
    room.store.add(ev)
    room.enter(ev, "a")
    assert [room.enter(ev, "b"), room.enter(ev, "c")] == [1, 2]
    monkeypatch.setattr("continuum_hub.workshops.waiting.STALE_SECONDS", 0)
    assert room.enter(ev, "c") == 1  # b closed the page: c moves up
    assert room.queue(ev.id) == []  # and, unseen since, leaves too


def test_queues_are_per_event(room):
    other = event(id="ba9876543210", join_code="other", seats=1)
    room.store.add(other)
    assert room.enter(other, "a") == 0
    assert room.enter(other, "b") == 1
    assert room.queue(event().id) == []


def user(name: str, groups: tuple[str, ...] = (), admin: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, admin=admin, groups=[SimpleNamespace(name=g) for g in groups])


@pytest.mark.parametrize(
    ("who", "ev", "queued", "allowed"),
    [
        (user("x", ("vo.hep.example",)), event(), False, True),
        (user("x", ("vo.other",)), event(), False, False),
        (user("x"), event(federated=True), False, True),
        (user("x"), event(), True, True),
        (user("ines"), event(), False, True),
        (user("root", admin=True), event(), False, True),
        (user("x"), event(participants=("x",)), False, True),
    ],
    ids=["vo-member", "other-vo", "federated", "queued", "owner", "admin", "participant"],
)
def test_who_may_queue(who, ev, queued, allowed):
    assert may_queue(who, ev, queued) is allowed


def test_waiting_url():
    assert waiting_url("/hub/", "0123456789ab") == "/hub/continuum/events/0123456789ab/waiting"


def test_routes_installed_once():
    from jupyterhub import apihandlers
    from jupyterhub import handlers as pages

    from continuum_hub.workshops import material_api, waiting

    before = (list(apihandlers.default_handlers), list(pages.default_handlers))
    try:
        for _ in range(2):
            waiting.install_waiting_page()
            material_api.install_material_handlers()
        assert [h[1] for h in pages.default_handlers if h[0] == waiting.PAGE_ROUTE] == [
            waiting.WaitingPageHandler
        ]
        found = [h for h in apihandlers.default_handlers if "material" in h[0]]
        assert found == list(material_api.ROUTES)
    finally:
        apihandlers.default_handlers[:] = before[0]
        pages.default_handlers[:] = before[1]
