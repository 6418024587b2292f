"""Workshop material and the waiting room on the real federation (issue 13, items 4 and 6).

Alice instructs ``vo.hep.example`` for this module; her one-seat event's material is a folder
under the session hub's ``EventManager.material_roots``.  Bob's real server job pulls it into
his home before JupyterLab starts; after an upstream change and alice's push the new file
arrives within the hub's ``material_interval`` and bob's edit stays.  Then dave takes the seat;
bob finds the event full, waits at position 1 and is let in when alice frees the seat.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.hub import api, hub_login, stop_server, wait_for_server
from fixtures.slurm import wait_until
from fixtures.workshops import event_json, events_call, instructor

pytestmark = [pytest.mark.integration, pytest.mark.workshops]


@pytest.fixture(scope="module")
def material(federation_root: Path) -> Iterator[Path]:
    """The instructor's material folder (readable by the participants' jobs); bob's copy of
    it from an earlier session is removed before and after."""
    copy = Path(pwd.getpwnam("bob").pw_dir) / "Material-test"
    shutil.rmtree(copy, ignore_errors=True)
    folder = federation_root / "material" / "intro"
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder.parent, folder):
        path.chmod(0o755)
    (folder / "intro.ipynb").write_text('{"cells": [], "v": 1}')
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture(scope="module")
def event(hub, idp, slurm_sites, material) -> Iterator[dict[str, Any]]:
    """Alice's running one-seat event with bob in it, and everyone's sessions."""
    people = {name: hub_login(hub, idp, name) for name in ("alice", "bob")}
    instructor(hub, "alice")
    body = event_json(
        title="Material test",
        material={"folder": str(material)},
    )
    made = events_call(hub, people["alice"], "POST", "", json=body)
    assert made.status_code == 201, made.text
    ev = made.json()
    try:
        yield {"event": ev, **people}
    finally:
        stop_server(hub, "bob")
        events_call(hub, people["alice"], "DELETE", f"/{ev['id']}")
        instructor(hub, "alice", member=False)


def as_bob(path: Path, text: str) -> None:
    path.write_text(text)
    bob = pwd.getpwnam("bob")
    os.chown(path, bob.pw_uid, bob.pw_gid)


def test_material_arrives_and_pushed_updates_keep_edits(hub, event, material):
    ev, alice = event["event"], event["alice"]
    assert events_call(hub, alice, "PUT", f"/{ev['id']}/participants/bob").status_code == 201
    options = {"site": "alpha", "partition": "interactive", "cores": 1, "walltime": "0:30"}
    started = api(hub, "POST", "/users/bob/server", json={"user_options": options})
    assert started.status_code in (201, 202), started.text
    wait_for_server(hub, "bob", timeout=90)
    folder = Path(pwd.getpwnam("bob").pw_dir) / "Material-test"
    # pulled before the server started, as bob
    assert (folder / "intro.ipynb").read_text() == '{"cells": [], "v": 1}'
    assert (folder / "intro.ipynb").stat().st_uid == pwd.getpwnam("bob").pw_uid

    as_bob(folder / "intro.ipynb", '{"cells": [], "mine": true}')
    (material / "intro.ipynb").write_text('{"cells": [], "v": 2}')
    (material / "day2.ipynb").write_text('{"cells": [], "day": 2}')
    # only the owner pushes, and only events with material
    assert events_call(hub, event["bob"], "POST", f"/{ev['id']}/material/push").status_code == 403
    pushed = events_call(hub, alice, "POST", f"/{ev['id']}/material/push")
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["version"] == 1 and pushed.json()["servers"] == ["bob"]
    wait_until((folder / "day2.ipynb").exists, 30, what="the pushed file in bob's home")
    assert (folder / "intro.ipynb").read_text() == '{"cells": [], "mine": true}'
    wait_until((folder / "intro.upstream.ipynb").exists, 5, what="upstream's copy beside")
    assert (folder / "intro.upstream.ipynb").read_text() == '{"cells": [], "v": 2}'


def test_full_event_has_a_waiting_room(hub, event):
    ev, alice, bob = event["event"], event["alice"], event["bob"]
    # dave takes the one seat; bob (a member of the event's VO) finds it full
    events_call(hub, alice, "DELETE", f"/{ev['id']}/participants/bob")
    assert events_call(hub, alice, "PUT", f"/{ev['id']}/participants/dave").status_code == 201
    url = f"{hub.url}/hub/continuum/events/{ev['id']}/waiting"
    page = bob.get(url, timeout=30, allow_redirects=False)
    assert page.status_code == 200, page.text
    assert 'id="continuum-waiting-position">1<' in page.text
    assert 'http-equiv="refresh"' in page.text
    assert bob.get(f"{hub.url}/hub/continuum/events/0123456789ab/waiting").status_code == 404

    assert events_call(hub, alice, "DELETE", f"/{ev['id']}/participants/dave").status_code == 204
    let_in = bob.get(url, timeout=30, allow_redirects=False)
    assert let_in.status_code == 302, let_in.text
    assert let_in.headers["Location"].endswith("/hub/spawn")
    assert events_call(hub, alice, "GET", f"/{ev['id']}").json()["participants"] == ["bob"]
