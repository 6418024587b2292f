"""Sharing a server (``continuum_hub.sharing``): the scopes granted and the page's model.

The model is built from a real JupyterHub database (in-memory SQLite, JupyterHub's own ORM and
its ``Share.grant`` / ``ShareCode.new``); the page served by a hub, sharing through it and
revocation are tested in ``tests/integration/test_workshop_sharing.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from jupyterhub import orm
from traitlets.config import Config

from continuum_hub.sharing import USER_SHARING_SCOPES, add_sharing, grant_sharing_scopes
from continuum_hub.sharing.page import (
    PAGE_ROUTE,
    TEMPLATES,
    SharingPageHandler,
    server_visits,
    sharing_model,
)

pytestmark = pytest.mark.workshops

ACCESS = "access:servers!server=alice/{}"


@pytest.fixture
def db() -> Iterator[Any]:
    session = orm.new_session_factory("sqlite:///:memory:")()
    yield session
    session.close()


def _user(db: Any, name: str, *servers: str) -> orm.User:
    user = orm.User(name=name)
    db.add(user)
    db.commit()
    for server in servers:
        db.add(orm.Spawner(user=user, name=server))
    db.commit()
    return user


def test_users_get_sharing_scopes_beside_the_services_access() -> None:
    c = Config()
    c.JupyterHub.extra_user_scopes = ["access:services!service=dask-gateway"]
    grant_sharing_scopes(c)
    grant_sharing_scopes(c)  # idempotent
    # never a `user` role: JupyterHub would then ignore extra_user_scopes (the services' access)
    assert "load_roles" not in c.JupyterHub
    assert set(c.JupyterHub.extra_user_scopes) == {
        "access:services!service=dask-gateway",
        *USER_SHARING_SCOPES,
    }
    assert c.Spawner.server_token_scopes == [
        "users:activity!user",
        "access:servers!server",
        "shares!user",
    ]


def test_existing_roles_and_server_scopes_are_extended_not_replaced() -> None:
    c = Config()
    c.JupyterHub.load_roles = [
        {"name": "monitor", "scopes": ["read:metrics"], "services": ["prometheus"]},
    ]
    c.Spawner.server_token_scopes = ["access:servers!server", "custom:living-tokens!user"]
    grant_sharing_scopes(c)
    assert c.JupyterHub.load_roles == [
        {"name": "monitor", "scopes": ["read:metrics"], "services": ["prometheus"]}
    ]
    assert c.Spawner.server_token_scopes[-1] == "shares!user"
    assert "custom:living-tokens!user" in c.Spawner.server_token_scopes


def test_callable_server_scopes_are_the_deployments_choice() -> None:
    c = Config()

    def scopes(spawner: Any) -> list[str]:
        return ["access:servers!server"]

    c.Spawner.server_token_scopes = scopes
    grant_sharing_scopes(c)
    assert c.Spawner.server_token_scopes is scopes


def test_add_sharing_registers_page_and_templates_once() -> None:
    from jupyterhub import handlers as hub_handlers

    c = Config()
    c.JupyterHub.template_paths = ["/etc/site-templates"]
    add_sharing(c)
    add_sharing(c)
    assert c.JupyterHub.template_paths == ["/etc/site-templates", str(TEMPLATES)]
    routes = [h for h in hub_handlers.default_handlers if h[0] == PAGE_ROUTE]
    assert routes == [(PAGE_ROUTE, SharingPageHandler)]
    assert (TEMPLATES / "continuum-sharing.html").is_file()


def test_model_lists_shares_links_and_servers_shared_with_me(db: Any) -> None:
    alice = _user(db, "alice", "", "gpu")
    bob = _user(db, "bob", "")
    carol = _user(db, "carol")
    group = orm.Group(name="course")
    group.users.append(carol)
    db.add(group)
    db.commit()
    default, gpu = alice.orm_spawners[""], alice.orm_spawners["gpu"]
    orm.Share.grant(db, default, bob)
    orm.Share.grant(db, gpu, group)
    orm.ShareCode.new(db, default, scopes=[ACCESS.format("")], expires_in=3600)
    orm.Share.grant(db, bob.orm_spawners[""], alice)

    model = sharing_model(db, alice, "/hub/api")
    servers = {s["name"]: s for s in model["servers"]}
    assert servers[""]["label"] == "default server"
    assert [(r["kind"], r["name"]) for r in servers[""]["shares"]] == [("user", "bob")]
    assert [(r["kind"], r["name"]) for r in servers["gpu"]["shares"]] == [("group", "course")]
    (link,) = servers[""]["codes"]
    assert link["id"].startswith("sc_") and link["accepted"] == 0
    assert "code" not in link  # the secret is shown once, by the API that makes it
    assert servers["gpu"]["shares_url"] == "/hub/api/shares/alice/gpu"
    assert servers[""]["shares_url"] == "/hub/api/shares/alice/"
    assert servers["gpu"]["codes_url"] == "/hub/api/share-codes/alice/gpu"
    assert not servers[""]["running"]
    assert model["shared_with_me"] == [
        {
            "owner": "bob",
            "server": "",
            "label": "bob",
            "via": "you",
            "url": "/user/bob/",
            "running": False,
        }
    ]
    # carol sees alice's gpu server through her group, and nothing of her own
    carol_model = sharing_model(db, carol, "/hub/api")
    assert carol_model["servers"] == []
    assert [(r["label"], r["via"]) for r in carol_model["shared_with_me"]] == [
        ("alice/gpu", "group course")
    ]


def test_revoked_share_and_accepted_link_show_up(db: Any) -> None:
    alice = _user(db, "alice", "")
    bob = _user(db, "bob")
    spawner = alice.orm_spawners[""]
    share_code, _code = orm.ShareCode.new(db, spawner, scopes=[ACCESS.format("")], expires_in=3600)
    share_code.exchange(bob)  # bob accepted the link: he appears among those with access
    model = sharing_model(db, alice, "/hub/api")
    (server,) = model["servers"]
    assert [r["name"] for r in server["shares"]] == ["bob"]
    assert server["codes"][0]["accepted"] == 1
    orm.Share.revoke(db, spawner, bob)
    assert sharing_model(db, alice, "/hub/api")["servers"][0]["shares"] == []


def _visit(db: Any, client: orm.OAuthClient, user: orm.User, first: datetime, last: datetime):
    """``user`` signed in to ``client``'s server at ``first`` and was last seen at ``last``: the
    OAuth token JupyterHub issues for the server (as ``OAuthProvider`` stores it)."""
    token = orm.APIToken(generated=True, client_id=client.identifier, scopes=[], created=first)
    db.add(token)
    token.token = secrets.token_hex(16)
    token.user = user
    token.last_activity = last
    db.commit()


def test_the_owner_sees_who_of_those_with_access_opened_the_server(db: Any) -> None:
    alice = _user(db, "alice", "")
    bob, carol, dave, erin = (_user(db, name) for name in ("bob", "carol", "dave", "erin"))
    course = orm.Group(name="course")
    course.users.extend([carol, dave])
    db.add(course)
    spawner = alice.orm_spawners[""]
    client = orm.OAuthClient(identifier="jupyterhub-user-alice", redirect_uri="/user/alice/")
    other = orm.OAuthClient(identifier="jupyterhub-user-erin", redirect_uri="/user/erin/")
    db.add_all([client, other])
    spawner.oauth_client_id = client.identifier
    db.commit()
    orm.Share.grant(db, spawner, bob)
    orm.Share.grant(db, spawner, erin)
    orm.Share.grant(db, spawner, course)
    at = datetime(2026, 12, 5, 9, 0)
    _visit(db, client, bob, at, at + timedelta(minutes=20))
    _visit(db, client, bob, at + timedelta(minutes=5), at + timedelta(minutes=12))  # a 2nd tab
    _visit(db, client, carol, at, at + timedelta(minutes=3))
    _visit(db, client, alice, at, at + timedelta(hours=1))  # her own visits are not listed
    _visit(db, other, erin, at, at + timedelta(hours=1))  # erin's own server, not alice's

    assert server_visits(db, spawner) == {
        "bob": (at, at + timedelta(minutes=20)),
        "carol": (at, at + timedelta(minutes=3)),
    }
    (server,) = sharing_model(db, alice, "/hub/api")["servers"]
    assert {r["name"]: r["opened"] for r in server["shares"]} == {
        "bob": "last seen 2026-12-05 09:20 UTC",
        "erin": "not yet",
        "course": "carol (last seen 2026-12-05 09:03 UTC)",
    }
    # a stopped server has no OAuth client (JupyterHub deletes it, and its tokens, at the stop)
    spawner.oauth_client_id = None
    db.commit()
    (server,) = sharing_model(db, alice, "/hub/api")["servers"]
    assert {r["opened"] for r in server["shares"]} == {"not yet"}
