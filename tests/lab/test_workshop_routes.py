"""The workshop routes (``continuum/workshop/*``) on the session hub.

alice instructs ``vo.hep.example`` and owns an event that bob joined.  alice has a real Jupyter
server with ``continuum_lab`` whose only credential is a hub token of hers as small as a
server's (``users:activity!user``); bob's side is the same manager in this process with such a
token of his (one server fewer to start).  Through her server alice sees the event with bob's
server state and acts on it (message, push, open, end: the hub's refusals pass through as they
are); bob finds no event to instruct, may not act on alice's, and reads her message.
Malformed requests are refused before anything reaches the hub, and polling is no activity of
the server (a participant who only keeps the lab open shows as idle).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from lab_support import LabServer, call, server_of_hub

from continuum_lab.remote import ServiceError
from continuum_lab.workshop import MAX_MESSAGE, WorkshopManager, action_request, message_after
from fixtures.hub import hub_login
from fixtures.workshop_events import delete_events
from fixtures.workshops import event_json, events_call, instructor

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.workshops]


@dataclass
class Workshop:
    """alice's event, her server and bob's manager."""

    event: dict[str, Any]
    alice: LabServer
    bob: WorkshopManager


def server_token(hub: Any, browser: requests.Session, name: str) -> str:
    """A hub token of ``name`` with no more than a server's own token may do."""
    response = browser.post(
        f"{hub.url}/hub/api/users/{name}/tokens",
        json={"scopes": ["users:activity!user"], "expires_in": 3600, "note": "workshop routes"},
        headers={"X-XSRFToken": browser.cookies.get("_xsrf", path="/hub/")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@pytest.fixture(scope="module")
def workshop(
    hub: Any, idp: Any, slurm_sites: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workshop]:
    browsers = {name: hub_login(hub, idp, name) for name in ("alice", "bob")}
    instructor(hub, "alice")
    try:
        created = events_call(
            hub, browsers["alice"], "POST", "", json=event_json(title="Lab routes", seats=2)
        )
        assert created.status_code == 201, created.text
        ev = created.json()
        joined = events_call(hub, browsers["alice"], "PUT", f"/{ev['id']}/participants/bob")
        assert joined.status_code == 201, joined.text
        bob = WorkshopManager(
            environ={
                "JUPYTERHUB_API_URL": f"{hub.url}/hub/api",
                "JUPYTERHUB_API_TOKEN": server_token(hub, browsers["bob"], "bob"),
            }
        )
        token = server_token(hub, browsers["alice"], "alice")
        with server_of_hub(tmp_path_factory.mktemp("ws-alice"), hub.url, token) as alice:
            yield Workshop(ev, alice, bob)
    finally:
        delete_events(hub, browsers["alice"], slurm_sites["alpha"])
        instructor(hub, "alice", member=False)


def act(server: LabServer, **body: Any) -> requests.Response:
    return call(server, "POST", "workshop/act", body)


async def test_the_instructor_sees_her_event_and_bob_none(workshop: Workshop) -> None:
    ev = workshop.event
    answer = call(workshop.alice, "GET", "workshop/events")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["refresh_seconds"] == 10
    (shown,) = [e for e in body["events"] if e["id"] == ev["id"]]
    assert shown["title"] == "Lab routes" and shown["seats"] == 2 and shown["owner"] == "alice"
    assert shown["material"] is False
    assert [(r["user"], r["state"]) for r in shown["participants"]] == [("bob", "stopped")]
    assert "join_code" not in shown and ev["join_code"] not in answer.text  # never in the lab

    # bob instructs nothing: an empty list, and the lab adds no panel
    assert (await workshop.bob.events())["events"] == []
    for action in ("start", "end", "message"):
        with pytest.raises(ServiceError) as refused:
            await workshop.bob.act({"event": ev["id"], "action": action, "text": "hi"})
        assert refused.value.status == 403, (action, refused.value.message)


async def test_a_message_reaches_the_participant_once(workshop: Workshop) -> None:
    ev, alice, bob = workshop.event, workshop.alice, workshop.bob
    before = await bob.messages("")
    assert before["refresh_seconds"] == 30
    seen = max((m["id"] for m in before["messages"]), default=0)

    sent = act(alice, event=ev["id"], action="message", text="Open notebook 2, please")
    assert sent.status_code == 200, sent.text
    assert sent.json()["text"] == "Open notebook 2, please"

    got = (await bob.messages(str(seen)))["messages"]
    assert [(m["text"], m["title"], m["author"]) for m in got] == [
        ("Open notebook 2, please", "Lab routes", "alice")
    ]
    assert (await bob.messages(str(got[0]["id"])))["messages"] == []
    # the instructor's panel lists what was sent
    events = call(alice, "GET", "workshop/events").json()["events"]
    (shown,) = [e for e in events if e["id"] == ev["id"]]
    assert [m["text"] for m in shown["messages"]] == ["Open notebook 2, please"]


def test_polls_are_no_activity_of_the_server(workshop: Workshop) -> None:
    alice = workshop.alice

    def last_activity() -> str:
        return str(alice.get("api/status", token=alice.token).json()["last_activity"])

    act(alice, event="0" * 12, action="start")  # an action counts (refused or not)
    before = last_activity()
    for route in ("workshop/messages", "workshop/events"):
        assert call(alice, "GET", route).status_code == 200
    assert last_activity() == before


def test_the_hubs_refusals_pass_through(workshop: Workshop) -> None:
    ev, alice = workshop.event, workshop.alice
    pushed = act(alice, event=ev["id"], action="push")
    assert pushed.status_code == 409, pushed.text  # the event has no material
    opened = act(alice, event=ev["id"], action="open", user="bob")
    assert opened.status_code == 409 and "not running" in opened.json()["message"]
    stranger = act(alice, event=ev["id"], action="open", user="carol")
    assert stranger.status_code == 404, stranger.text
    unknown = act(alice, event="0" * 12, action="start")
    assert unknown.status_code == 404, unknown.text


@pytest.mark.parametrize(
    "body,said",
    [
        ({"event": "../admin", "action": "start"}, "event: an event's id"),
        ({"event": "0123456789ab", "action": "delete"}, "action must be one of"),
        ({"event": "0123456789ab", "action": "open", "user": "../../x"}, "user: a participant"),
        ({"event": "0123456789ab", "action": "message", "text": "  "}, "non-empty"),
        ({"event": "0123456789ab", "action": "message", "text": "x" * 2001}, "at most 2000"),
    ],
    ids=["event-path", "action", "user-path", "empty-message", "long-message"],
)
def test_bad_actions_are_refused_before_the_hub(body: dict[str, Any], said: str) -> None:
    with pytest.raises(ServiceError) as refused:
        action_request(body)
    assert refused.value.status == 400 and said in refused.value.message
    assert MAX_MESSAGE == 2000


@pytest.mark.parametrize("value", ["-1", "1e3", "x", "9" * 19], ids=str)
def test_after_must_be_a_message_id(value: str) -> None:
    with pytest.raises(ServiceError) as refused:
        message_after(value)
    assert refused.value.status == 400


def test_bad_requests_through_the_routes(workshop: Workshop) -> None:
    alice = workshop.alice
    assert call(alice, "GET", "workshop/messages?after=-1").status_code == 400
    assert act(alice, event="0123456789ab", action="delete").status_code == 400
    not_json = requests.post(
        f"{alice.url}continuum/workshop/act",
        data="[1]",
        headers={"Authorization": f"token {alice.token}"},
        timeout=30,
    )
    assert not_json.status_code == 400


async def test_ending_leaves_the_panel_and_gives_the_attendance(workshop: Workshop) -> None:
    ev, alice = workshop.event, workshop.alice
    ended = act(alice, event=ev["id"], action="end")
    assert ended.status_code == 200, ended.text
    assert ended.json()["attendance_url"] == f"/hub/continuum/events/{ev['id']}/attendance.csv"
    events = call(alice, "GET", "workshop/events").json()["events"]
    assert ev["id"] not in [e["id"] for e in events]
    # the event's messages go with it (bob's poll no longer returns them)
    left = (await workshop.bob.messages(""))["messages"]
    assert ev["id"] not in [m["event"] for m in left]
