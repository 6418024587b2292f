"""The sharing page ``/hub/continuum/sharing``: "share my server with…", links, who has access.

A JupyterHub page (template ``continuum-sharing.html``, extending ``page.html``) for any signed-in
user.  It lists the user's servers and, for each, who has access (shares with users and groups,
and the revocable links with when they expire and how often they were accepted: whoever accepted
a link appears among the users) with who of them opened the running server and when they were
last seen there, so a participant sees who joined their server, and the servers others shared
with the user.  Its buttons call JupyterHub's own REST API with the page's XSRF
token: ``POST /hub/api/shares/{user}/{server}`` (share with a user or group), ``PATCH`` there
(revoke), ``POST|DELETE /hub/api/share-codes/{user}/{server}`` (make or revoke a link).
Nothing here grants anything itself: the scopes come from
:func:`continuum_hub.sharing.grant_sharing_scopes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyterhub import handlers as hub_handlers
from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets.config import Config

PAGE_ROUTE = r"/continuum/sharing"
TEMPLATE = "continuum-sharing.html"
TEMPLATES = Path(__file__).parent / "templates"


def _when(value: datetime | None) -> str:
    """A stored (naive UTC) time as ``YYYY-MM-DD HH:MM UTC``, or ``–``."""
    if value is None:
        return "–"
    return value.replace(tzinfo=value.tzinfo or UTC).strftime("%Y-%m-%d %H:%M UTC")


Visits = dict[str, tuple[datetime, datetime]]


def server_visits(db: Any, spawner: orm.Spawner) -> Visits:
    """Who other than its owner opened ``spawner``'s running server: per user name, when they
    first signed in to it and when they were last seen there.

    Read from the OAuth tokens the hub issued to them for the server's OAuth client (the
    server checks a visitor's token with the hub, which records its last activity); JupyterHub
    deletes the client and its tokens when the server stops, so this is the running server's.
    """
    if not spawner.oauth_client_id:
        return {}
    tokens = db.query(orm.APIToken).filter(
        orm.APIToken.client_id == spawner.oauth_client_id,
        orm.APIToken.user_id.isnot(None),
        orm.APIToken.user_id != spawner.user_id,
    )
    visits: Visits = {}
    for token in tokens:
        first = token.created
        last = token.last_activity or token.created
        if token.user.name in visits:
            was_first, was_last = visits[token.user.name]
            first, last = min(first, was_first), max(last, was_last)
        visits[token.user.name] = (first, last)
    return visits


def _opened(names: Iterable[str], visits: Visits) -> str:
    """``names`` who opened the server, with when they were last seen there; ``not yet``."""
    seen = [f"{name} (last seen {_when(visits[name][1])})" for name in names if name in visits]
    return ", ".join(seen) if seen else "not yet"


def share_row(share: orm.Share, visits: Visits | None = None) -> dict[str, Any]:
    """One share as the page shows it: with whom (``kind``, ``name``), since when, and who of
    them opened the running server (``opened``, from :func:`server_visits`)."""
    visits = visits or {}
    if share.group is not None:
        members = sorted(u.name for u in share.group.users)
        return {
            "kind": "group",
            "name": share.group.name,
            "since": _when(share.created_at),
            "opened": _opened(members, visits),
        }
    name = share.user.name
    opened = f"last seen {_when(visits[name][1])}" if name in visits else "not yet"
    return {"kind": "user", "name": name, "since": _when(share.created_at), "opened": opened}


def code_row(code: orm.ShareCode) -> dict[str, Any]:
    """One share link (never the code itself: it is shown once, when made)."""
    return {
        "id": f"sc_{code.id}",
        "created": _when(code.created_at),
        "expires": _when(code.expires_at),
        "accepted": code.exchange_count or 0,
        "last_accepted": _when(code.last_exchanged_at),
    }


def sharing_model(db: Any, user: orm.User, api_url: str) -> dict[str, Any]:
    """What the page shows to ``user``: ``servers`` (their own, each with ``shares``, who of
    them opened it, and ``codes``) and ``shared_with_me`` (others' servers they or their groups
    may open)."""
    servers = []
    owner = quote(user.name)
    for name, spawner in sorted(user.orm_spawners.items()):
        shares = db.query(orm.Share).filter_by(spawner_id=spawner.id).order_by(orm.Share.id)
        codes = db.query(orm.ShareCode).filter_by(spawner_id=spawner.id).order_by(orm.ShareCode.id)
        visits = server_visits(db, spawner)
        servers.append(
            {
                "name": name,
                "label": name or "default server",
                "running": spawner.server is not None,
                "shares": [share_row(s, visits) for s in shares if not s.expired],
                "codes": [code_row(c) for c in codes if not c.expired],
                # the default server's name is empty: the URL still ends in "/" (else the
                # API reads "all servers of the user", where POST is not allowed)
                "shares_url": f"{url_path_join(api_url, 'shares', owner)}/{quote(name)}",
                "codes_url": f"{url_path_join(api_url, 'share-codes', owner)}/{quote(name)}",
            }
        )
    group_ids = [g.id for g in user.groups]
    mine = db.query(orm.Share).filter(
        (orm.Share.user_id == user.id) | orm.Share.group_id.in_(group_ids or [-1])
    )
    shared = [
        {
            "owner": s.owner.name,
            "server": s.spawner.name,
            "label": f"{s.owner.name}/{s.spawner.name}" if s.spawner.name else s.owner.name,
            "via": f"group {s.group.name}" if s.group is not None else "you",
            "url": url_path_join("/user", s.owner.name, s.spawner.name, "/"),
            "running": s.spawner.server is not None,
        }
        for s in mine.order_by(orm.Share.id)
        if not s.expired and s.owner_id != user.id
    ]
    return {"servers": servers, "shared_with_me": shared}


class SharingPageHandler(BaseHandler):
    """``GET /hub/continuum/sharing``: the signed-in user's sharing page (see the module)."""

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "only hub users have servers to share")
        api_url = url_path_join(self.hub.base_url, "api")
        model = sharing_model(self.db, user.orm_user, api_url)
        base = self.base_url
        for row in model["shared_with_me"]:
            row["url"] = url_path_join(base, row["url"])
        self.set_header("Cache-Control", "no-store")
        self.finish(await self.render_template(TEMPLATE, **model))


def install_routes(table: list[Any], routes: Iterable[tuple[str, Any]]) -> None:
    """Put ``routes`` into one of the hub's handler tables, replacing earlier copies (so that
    configuring twice, as the tests do, installs each once)."""
    routes = list(routes)
    paths = {route for route, _ in routes}
    table[:] = [h for h in table if h[0] not in paths]
    table.extend(routes)


def add_template_path(c: Config, folder: Path) -> None:
    """Let the hub find our templates in ``folder`` after those the deployment's layers named."""
    paths = list(c.JupyterHub.template_paths) if "template_paths" in c.JupyterHub else []
    if str(folder) not in paths:
        paths.append(str(folder))
    c.JupyterHub.template_paths = paths


def add_sharing_page(c: Config) -> None:
    """Serve the sharing page: its route (idempotent) and its template folder."""
    install_routes(hub_handlers.default_handlers, [(PAGE_ROUTE, SharingPageHandler)])
    add_template_path(c, TEMPLATES)
