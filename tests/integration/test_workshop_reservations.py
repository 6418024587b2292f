"""Workshop events on the real federation: REST, a real Slurm reservation, a participant's
server job in it, and the refusals (issue 13, items 1–2).

Alice signs in through the real provider and is made an instructor of ``vo.hep.example`` for
this module (the hub group ``vo.hep.example#instructor``, what the entitlement
``…:group:vo.hep.example:role=instructor`` gives); Bob is a member of the VO only.  Every event
made here is deleted at the end and any reservation left on the site removed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests

from fixtures.hub import api, hub_login, stop_server, wait_for_server
from fixtures.slurm import squeue, wait_until
from fixtures.workshop_events import show_reservation
from fixtures.workshops import event_json as event_body
from fixtures.workshops import events_call as call

pytestmark = [pytest.mark.integration, pytest.mark.workshops]

INSTRUCTORS = "vo.hep.example#instructor"


@pytest.fixture(scope="module")
def people(hub, idp, slurm_sites) -> Iterator[dict[str, requests.Session]]:
    browsers = {name: hub_login(hub, idp, name) for name in ("alice", "bob")}
    response = api(
        hub, "POST", f"/groups/{INSTRUCTORS.replace('#', '%23')}/users", json={"users": ["alice"]}
    )
    if response.status_code == 404:
        response = api(
            hub, "POST", f"/groups/{INSTRUCTORS.replace('#', '%23')}", json={"users": ["alice"]}
        )
    assert response.status_code in (200, 201), response.text
    try:
        yield browsers
    finally:
        stop_server(hub, "bob")
        listed = call(hub, browsers["alice"], "GET", "").json().get("events", [])
        for ev in listed:
            call(hub, browsers["alice"], "DELETE", f"/{ev['id']}")
            # never leave a reservation behind, whatever the hub did
            subprocess.run(
                ["scontrol", "delete", f"ReservationName={ev['reservation']['name']}"],
                env=slurm_sites["alpha"].client_env(),
                capture_output=True,
                check=False,
            )
        api(
            hub,
            "DELETE",
            f"/groups/{INSTRUCTORS.replace('#', '%23')}/users",
            json={"users": ["alice"]},
        )


@pytest.mark.parametrize(
    "changes,status,message",
    [
        ({"seats": 0}, 400, "seats must be between 1"),
        ({"site": "nowhere"}, 400, "unknown site"),
        ({"partition": "gpu"}, 400, "has no partition 'gpu'"),
        ({"profiles": [{"cores": 64}]}, 400, "cores must be between 1 and 4"),
        ({"start": "2020-01-01T09:00:00Z", "end": "2020-01-01T10:00:00Z"}, 400, "in the past"),
        ({"end": "2099-01-01T00:00:00Z"}, 400, "at most 14 days"),
        ({"material": {"git": "file:///etc/shadow"}}, 400, "not 'file'"),
        ({"material": {"git": "http://192.168.0.1/x.git"}}, 400, "private network"),
        ({"access": {"vos": ["vo.radio.example"]}}, 403, "not an instructor"),
    ],
)
def test_bad_events_are_refused_and_nothing_stored(hub, people, changes, status, message):
    response = call(hub, people["alice"], "POST", "", json=event_body(**changes))
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert call(hub, people["alice"], "GET", "").json()["events"] == []


def test_event_reserves_slurm_capacity_for_its_participants(hub, people, slurm_sites):
    alice, bob = people["alice"], people["bob"]
    # the hub started the periodic reservation task with its configuration
    assert "Workshop events: reservations checked every" in hub.log(100_000)
    site = slurm_sites["alpha"]
    # bob is in the VO but instructs nothing
    assert call(hub, bob, "POST", "", json=event_body()).status_code == 403

    response = call(hub, alice, "POST", "", json=event_body())
    assert response.status_code == 201, response.text
    ev = response.json()
    name = ev["reservation"]["name"]
    assert ev["reservation"]["state"] == "created", ev["reservation"]
    shown = show_reservation(site, name)
    assert shown.returncode == 0, shown.stderr
    assert "CoreCnt=1 " in shown.stdout and "PartitionName=interactive" in shown.stdout

    # another user sees neither the event nor may add participants; the join code shows its
    # public part
    assert call(hub, bob, "GET", f"/{ev['id']}").status_code == 403
    assert call(hub, bob, "PUT", f"/{ev['id']}/participants/bob").status_code == 403
    public = call(hub, bob, "GET", f"/join/{ev['join_code']}")
    assert public.status_code == 200 and "join_code" not in public.json()
    assert call(hub, bob, "GET", "/join/not-a-code").status_code == 404

    assert call(hub, alice, "PUT", f"/{ev['id']}/participants/bob").status_code == 201
    # one seat: nobody else fits
    assert call(hub, alice, "PUT", f"/{ev['id']}/participants/carol").status_code == 409

    options = {"site": "alpha", "partition": "interactive", "cores": 1, "walltime": "0:30"}
    started = api(hub, "POST", "/users/bob/server", json={"user_options": options})
    assert started.status_code in (201, 202), started.text
    wait_for_server(hub, "bob", timeout=90)
    rows = squeue(site, "--user=bob", "--format=%i|%v|%T")
    assert [row[1:] for row in rows] == [[name, "RUNNING"]], rows
    assert "Users=root,bob" in show_reservation(site, name).stdout

    # the site keeps a reservation in use: the event stays until the servers stop
    refused = call(hub, alice, "DELETE", f"/{ev['id']}")
    if refused.status_code == 409:
        assert "stop the participants' servers" in refused.json()["message"]
    stop_server(hub, "bob")
    if refused.status_code == 409:
        assert call(hub, alice, "DELETE", f"/{ev['id']}").status_code == 204
    else:
        assert refused.status_code == 204, refused.text
    wait_until(lambda: show_reservation(site, name).returncode != 0, 30, what="reservation gone")
    assert call(hub, alice, "GET", f"/{ev['id']}").status_code == 404
