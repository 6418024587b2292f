"""Joining workshop events through their link, and guest seats, on the real federation
(issue 13, item 3 and its bad input).

Alice instructs ``vo.hep.example`` (as in test_workshop_reservations); Bob (a VO member) joins
through the link, signing in at the real provider on the way; a guest signs in with a code,
gets an account of the guest pool (``WorkshopAccountMapper.guest_pool`` of the session hub:
``wsguest1``, ``wsguest2``) and a real server job; the event is then full.  Expired, reused,
forged and brute-forced codes are refused.  When the event goes, the guest user is deleted,
its lease released and its home emptied.
"""

from __future__ import annotations

import pwd
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from continuum_federation.accounts import ensure_unix_user
from fixtures.hub import api, begin_login, finish_login, hub_login, stop_server, wait_for_server
from fixtures.slurm import squeue, wait_until
from fixtures.workshops import event_json, events_call, remove_event, start_profile

pytestmark = [pytest.mark.integration, pytest.mark.workshops]

INSTRUCTORS = "vo.hep.example%23instructor"
GUEST_POOL = ("wsguest1", "wsguest2")


def event_body(start: datetime) -> dict[str, Any]:
    """Two seats, one of them a guest seat, for an hour from ``start``."""
    return event_json(
        start=start.isoformat(),
        end=(start + timedelta(hours=1)).isoformat(),
        seats=2,
        access={"vos": ["vo.hep.example"], "guest_seats": 1},
    )


@pytest.fixture(scope="module")
def alice(hub, idp, slurm_sites) -> Iterator[requests.Session]:
    for name in GUEST_POOL:
        ensure_unix_user(name)
    browser = hub_login(hub, idp, "alice")
    response = api(hub, "POST", f"/groups/{INSTRUCTORS}/users", json={"users": ["alice"]})
    if response.status_code == 404:
        response = api(hub, "POST", f"/groups/{INSTRUCTORS}", json={"users": ["alice"]})
    assert response.status_code in (200, 201), response.text
    try:
        yield browser
    finally:
        for ev in events_call(hub, browser, "GET", "").json().get("events", []):
            remove_event(hub, browser, ev, slurm_sites["alpha"])
        api(hub, "DELETE", f"/groups/{INSTRUCTORS}/users", json={"users": ["alice"]})


def guest_get(hub, code: str, guest_code: str, browser: requests.Session | None = None):
    browser = browser or requests.Session()
    return browser.get(
        f"{hub.url}/hub/continuum/join/{code}/guest", params={"code": guest_code}, timeout=60
    )


def guest_codes(hub, instructor: requests.Session, event_id: str, count: int):
    return events_call(hub, instructor, "POST", f"/{event_id}/guest-codes", json={"count": count})


def leases(hub) -> dict[str, str]:
    path = Path(hub.state_dir) / "continuum_account_leases.sqlite"
    with closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT username, account FROM leases WHERE site = 'alpha'"))


def test_guest_codes_outside_the_window_and_forged_ones_are_refused(hub, alice):
    start = datetime.now(UTC) + timedelta(hours=3)
    later = events_call(hub, alice, "POST", "", json=event_body(start))
    assert later.status_code == 201, later.text
    ev = later.json()
    made = guest_codes(hub, alice, ev["id"], 2)
    assert made.status_code == 201, made.text
    codes = made.json()["codes"]
    assert len(codes) == 2
    # too early: the code is refused and stays unspent
    early = guest_get(hub, ev["join_code"], codes[0])
    assert early.status_code == 403 and "opens at" in early.text
    assert "jupyterhub-session-id" not in early.cookies
    assert guest_codes(hub, alice, ev["id"], 0).status_code == 400
    # a forged join code
    assert guest_get(hub, "forged-join-code", codes[1]).status_code == 403
    # refusals are logged, the codes never (the access log scrubs ``code``)
    log = hub.log(2000)
    assert "Join of event" in log and codes[0] not in log and codes[1] not in log


def test_link_guest_seat_full_event_and_the_end(hub, idp, alice, slurm_sites):
    site = slurm_sites["alpha"]
    created = events_call(hub, alice, "POST", "", json=event_body(datetime.now(UTC)))
    assert created.status_code == 201, created.text
    ev = created.json()
    join = f"/hub/continuum/join/{ev['join_code']}"

    # Bob opens the link before signing in: the federated sign-in, then back to the event
    visitor = requests.Session()
    first = visitor.get(f"{hub.url}{join}", allow_redirects=False, timeout=60)
    assert first.status_code == 302 and "/hub/login" in first.headers["Location"]
    visitor, callback = begin_login(hub, idp, "bob", params={"next": join}, browser=visitor)
    landed = finish_login(visitor, callback, follow_redirects=True)
    assert landed.status_code == 200 and landed.url.endswith(f"{join}/start"), landed.url
    assert 'name="profile" ' in landed.text and 'value="lab"' in landed.text
    bob = api(hub, "GET", "/users/bob").json()
    assert f"workshop-{ev['id']}" in bob["groups"]

    # the guest: a code signs in without the provider, once
    codes = guest_codes(hub, alice, ev["id"], 1).json()["codes"]
    guest = requests.Session()
    started = guest_get(hub, ev["join_code"], codes[0], guest)
    assert started.status_code == 200 and started.url.endswith(f"{join}/start"), started.text
    listed = events_call(hub, alice, "GET", f"/{ev['id']}").json()["participants"]
    assert listed[0] == "bob" and listed[1].startswith("guest-"), listed
    name = listed[1]
    assert guest_get(hub, ev["join_code"], codes[0]).status_code == 403  # reused

    # the guest starts the event's profile: a job of the guest pool's account
    spawn = start_profile(hub, guest, ev["join_code"])
    assert spawn.status_code == 302, spawn.text
    wait_for_server(hub, name, timeout=90)
    account = leases(hub)[name]
    assert account in GUEST_POOL
    assert [row[1] for row in squeue(site, f"--user={account}", "--format=%i|%T")] == ["RUNNING"]

    # two seats taken: Alice (a VO member too) finds a full event and the waiting room
    full = alice.get(f"{hub.url}{join}", timeout=60)
    assert full.status_code == 409 and f"/hub/continuum/events/{ev['id']}/waiting" in full.text
    # Dave is in another VO
    dave = hub_login(hub, idp, "dave").get(f"{hub.url}{join}", timeout=60)
    assert dave.status_code == 403

    # brute force: the limit holds before a code could be found
    answers = [guest_get(hub, ev["join_code"], f"guess{n}").status_code for n in range(12)]
    assert answers[0] == 403 and answers[-1] == 429, answers

    # the end: the guest user, the lease and the home's contents go
    home = Path(pwd.getpwnam(account).pw_dir)
    (home / "left-behind.txt").write_text("notes")
    stop_server(hub, name)
    assert events_call(hub, alice, "DELETE", f"/{ev['id']}").status_code == 204
    wait_until(lambda: api(hub, "GET", f"/users/{name}").status_code == 404, 30, what="guest gone")
    assert name not in leases(hub)
    assert not (home / "left-behind.txt").exists()
    assert f"workshop-{ev['id']}" not in api(hub, "GET", "/users/bob").json()["groups"]


def test_an_event_open_to_anyone_federated_admits_a_user_outside_allowed_groups(hub, idp, alice):
    """Carol's provider vouches for her but she is in no VO the hub allows: a plain sign-in is
    refused; through the link of an event open to anyone federated she is let in and joins, a
    participant signs in while it runs, and once the event is gone she is refused again."""
    refused, callback = begin_login(hub, idp, "carol")
    assert finish_login(refused, callback).status_code == 403

    body = event_json(access={"federated": True})
    created = events_call(hub, alice, "POST", "", json=body)
    assert created.status_code == 201, created.text
    ev = created.json()
    join = f"/hub/continuum/join/{ev['join_code']}"
    try:
        carol, callback = begin_login(hub, idp, "carol", params={"next": join})
        landed = finish_login(carol, callback, follow_redirects=True)
        assert landed.status_code == 200 and landed.url.endswith(f"{join}/start"), landed.url
        assert f"workshop-{ev['id']}" in api(hub, "GET", "/users/carol").json()["groups"]
        # a participant signs in without the link while the event runs
        again, callback = begin_login(hub, idp, "carol", params={"next": "/hub/home"})
        assert finish_login(again, callback).status_code == 302
    finally:
        assert events_call(hub, alice, "DELETE", f"/{ev['id']}").status_code == 204
    late, callback = begin_login(hub, idp, "carol", params={"next": join})
    assert finish_login(late, callback).status_code == 403
