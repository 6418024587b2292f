"""Sharing a server and the instructor's view on the real federation (issue 13 item 5).

Bob is a participant of Alice's event (Alice instructs ``vo.hep.example``, as in
test_workshop_reservations) and starts a real server job in its reservation.  Through what the
sharing page calls (``/hub/continuum/sharing`` and JupyterHub's share APIs) he shares it with
Erin, who then reaches it with her own token, and makes a link the partner's Alice
(``alice-partner``) accepts; the revocations take the access away again.  Alice sees Bob's
server state, opens it through the event's policy, sends a message Bob reads, and ends the
event: the server stops, her share goes, the attendance CSV lists Bob and the reservation is
released.  ``alice-partner``, an instructor of the same VO
but not of this event, gets 403.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from test_workshop_reservations import event_body, show_reservation

from fixtures.hub import api, hub_login, server_model, stop_server, wait_for_server
from fixtures.slurm import wait_until
from fixtures.workshop_events import delete_events

pytestmark = [pytest.mark.integration, pytest.mark.workshops]

INSTRUCTORS = "vo.hep.example%23instructor"
#: hub users (erin and alice-partner sign in at the partner's provider; carol may not sign
#: in at all and dave is an admin, who may open every server anyway)
PEOPLE = ("alice", "bob", "alice-partner", "erin")


def call(hub, browser: requests.Session, method: str, path: str, **kwargs: Any):
    """``path`` of the hub (below ``/hub``) as a signed-in user, with the hub's XSRF token."""
    return browser.request(
        method,
        f"{hub.url}/hub{path}",
        headers={"X-XSRFToken": browser.cookies.get("_xsrf", path="/hub/")},
        timeout=60,
        **kwargs,
    )


def page_text(hub, browser: requests.Session, path: str) -> str:
    """A hub page's text (UTF-8: JupyterHub's pages name no charset in Content-Type)."""
    response = call(hub, browser, "GET", path)
    assert response.status_code == 200, response.text
    return response.content.decode()


def token_of(hub, browser: requests.Session, name: str) -> str:
    response = call(hub, browser, "POST", f"/api/users/{name}/tokens", json={"note": "sharing"})
    assert response.status_code in (200, 201), response.text
    return response.json()["token"]


def reaches(hub, token: str, owner: str) -> int:
    """The status of a request to ``owner``'s server with ``token`` (200: let in)."""
    response = requests.get(
        f"{hub.url}/user/{owner}/api/status",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        allow_redirects=False,
    )
    return response.status_code


@pytest.fixture(scope="module")
def people(hub, idp, idp2, slurm_sites) -> Iterator[dict[str, requests.Session]]:
    browsers = {name: hub_login(hub, idp, name) for name in ("alice", "bob")}
    browsers["alice-partner"] = hub_login(hub, idp2, "alice", provider="partner")
    browsers["erin"] = hub_login(hub, idp2, "erin", provider="partner")
    for name in ("alice", "alice-partner"):
        response = api(hub, "POST", f"/groups/{INSTRUCTORS}/users", json={"users": [name]})
        if response.status_code == 404:
            response = api(hub, "POST", f"/groups/{INSTRUCTORS}", json={"users": [name]})
        assert response.status_code in (200, 201), response.text
    try:
        yield browsers
    finally:
        if server_model(hub, "bob"):
            stop_server(hub, "bob")
        delete_events(hub, browsers["alice"], slurm_sites["alpha"])
        api(
            hub,
            "DELETE",
            f"/groups/{INSTRUCTORS}/users",
            json={"users": ["alice", "alice-partner"]},
        )


def test_share_with_a_user_and_a_link_then_the_instructors_view(hub, people, slurm_sites):
    alice, bob, other, erin = (people[name] for name in PEOPLE)
    body = event_body(title="Sharing test", seats=2)
    created = call(hub, alice, "POST", "/api/continuum/events", json=body)
    assert created.status_code == 201, created.text
    ev = created.json()
    view = f"/api/continuum/events/{ev['id']}/instructor"
    assert call(hub, alice, "PUT", f"/api/continuum/events/{ev['id']}/participants/bob").ok

    # alice starts every participant's server with the event's profile
    started = call(hub, alice, "POST", view + "/start")
    assert started.status_code == 200, started.text
    assert started.json()["started"] == ["bob"]
    states = call(hub, alice, "GET", view).json()["participants"]
    assert [r["user"] for r in states] == ["bob"]
    assert states[0]["state"] in ("queued", "starting", "running"), states
    wait_for_server(hub, "bob", timeout=120)
    row = call(hub, alice, "GET", view).json()["participants"][0]
    assert row["state"] == "running" and row["job_id"], row

    # bob's sharing page; sharing with erin as the page's form does; erin gets in
    page = call(hub, bob, "GET", "/continuum/sharing")
    assert page.status_code == 200 and "default server" in page.text and "running" in page.text
    shared = call(hub, bob, "POST", "/api/shares/bob/", json={"user": "erin"})
    assert shared.status_code == 200, shared.text
    assert reaches(hub, token_of(hub, erin, "erin"), "bob") == 200
    assert 'data-owner="bob"' in page_text(hub, erin, "/continuum/sharing")  # "shared with you"
    assert reaches(hub, token_of(hub, other, "alice-partner"), "bob") == 403  # not shared with her

    # a link: alice-partner accepts it, bob sees her among those with access, then revokes both
    link = call(hub, bob, "POST", "/api/share-codes/bob/", json={"expires_in": 3600}).json()
    accept = urlsplit(link["accept_url"])
    form = call(hub, other, "GET", f"/accept-share?{accept.query}")
    assert form.status_code == 200, form.text
    accepted = other.post(
        f"{hub.url}{link['accept_url']}",
        data={
            "code": link["accept_url"].split("code=", 1)[1],
            "_xsrf": other.cookies.get("_xsrf", path="/hub/"),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert accepted.status_code == 302, accepted.text
    assert reaches(hub, token_of(hub, other, "alice-partner"), "bob") == 200
    page = page_text(hub, bob, "/continuum/sharing")
    assert (
        'data-name="alice-partner"' in page and 'data-name="erin"' in page and "accepted 1×" in page
    )
    for name in ("erin", "alice-partner"):
        revoked = call(hub, bob, "PATCH", "/api/shares/bob/", json={"user": name})
        assert revoked.status_code == 200, revoked.text
    assert call(hub, bob, "DELETE", f"/api/share-codes/bob/?id={link['id']}").status_code == 204
    # a fresh token of theirs (the server caches tokens it checked) no longer gets in
    assert reaches(hub, token_of(hub, erin, "erin"), "bob") == 403
    assert reaches(hub, token_of(hub, other, "alice-partner"), "bob") == 403

    # alice-partner instructs the VO, not this event
    assert call(hub, other, "GET", view).status_code == 403
    assert call(hub, other, "GET", f"/continuum/events/{ev['id']}/instructor").status_code == 403
    assert call(hub, other, "POST", view + "/open/bob").status_code == 403
    assert call(hub, bob, "POST", view + "/end").status_code == 403

    # alice's page, opening bob's server by the event's policy, a message bob reads
    page = call(hub, alice, "GET", f"/continuum/events/{ev['id']}/instructor")
    assert page.status_code == 200 and 'data-user="bob"' in page.text
    opened = call(hub, alice, "POST", view + "/open/bob")
    assert opened.status_code == 200, opened.text
    assert opened.json()["url"] == "/user/bob/"
    assert reaches(hub, token_of(hub, alice, "alice"), "bob") == 200
    assert 'data-name="alice"' in page_text(hub, bob, "/continuum/sharing")
    sent = call(hub, alice, "POST", view + "/message", json={"text": "Open notebook 2"})
    assert sent.status_code == 201, sent.text
    got = call(hub, bob, "GET", "/api/continuum/events/messages").json()["messages"]
    assert [m["text"] for m in got] == ["Open notebook 2"]
    assert call(hub, alice, "POST", view + "/message", json={"text": ""}).status_code == 400

    # the end: bob's server stopped, alice's share gone, the attendance, no reservation
    ended = call(hub, alice, "POST", view + "/end")
    assert ended.status_code == 200, ended.text
    assert ended.json()["stopped"] == ["bob"] and ended.json()["shares_revoked"] == 1
    assert not server_model(hub, "bob")
    assert 'data-name="alice"' not in page_text(hub, bob, "/continuum/sharing")
    attendance = call(hub, alice, "GET", f"/continuum/events/{ev['id']}/attendance.csv")
    assert attendance.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(attendance.text)))
    assert [(r["user"], r["state"]) for r in rows] == [("bob", "stopped")]
    site = slurm_sites["alpha"]
    name = ev["reservation"]["name"]
    wait_until(lambda: show_reservation(site, name).returncode != 0, 90, what="reservation gone")
    assert call(hub, alice, "POST", view + "/start").status_code == 409
