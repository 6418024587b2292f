"""Hub routes for living tokens: the access-token endpoint and the *sign in again* page.

``GET /hub/api/continuum/token`` (or ``…/token/<user>``) — a valid access token of the user's
identity provider, refreshed first when too close to its expiry, as ``{"access_token",
"expires_at"}`` and nothing else (the refresh token never leaves the hub).  It needs an API
token (not a browser session) holding the custom scope :data:`SCOPE` for that user: every
user holds it for themselves, and servers' own ``JUPYTERHUB_API_TOKEN`` carry it
(:func:`add_token_scopes`), so a server reads its own user's token and nobody else's.  The
``continuum_lab`` server extension and ``continuum-token-agent`` keep ``BEARER_TOKEN_FILE``
fresh with it.  The refresher (:class:`~.tokens.TokenRefresher`) is handed to the handler.

``GET /hub/continuum/sign-in-again`` — where a browser lands when its user's session has
ended at the identity provider (refresh token revoked or expired, entitlements lost).

``FederatedAuthenticator.get_handlers`` serves both routes (:func:`token_handlers`; JupyterHub
puts ``/hub`` before them); :func:`add_token_scopes` (called by ``jupyterhub_config.py`` after
all layers) defines and grants the scope.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any

from jupyterhub.apihandlers import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat
from traitlets.config import Config

from ..workshops.join import is_event_guest
from .tokens import TokenRefresher

SCOPE = "custom:continuum-token:read"
SCOPE_DESCRIPTION = (
    "Read a fresh access token of the user's identity provider (never the refresh token)."
)
TOKEN_ROUTE = r"/api/continuum/token"  # noqa: S105 - a route
USER_TOKEN_ROUTE = r"/api/continuum/token/([^/]+)"  # noqa: S105 - a route
SIGN_IN_AGAIN_ROUTE = r"/continuum/sign-in-again"
# JupyterHub's `server` role, which a deployment's Spawner.server_token_scopes replaces
DEFAULT_SERVER_SCOPES = ("users:activity!user", "access:servers!server")
SIGN_IN_AGAIN = (
    "Your sign-in has ended: your identity provider no longer accepts this session "
    "(it was revoked or has expired, or your memberships changed). Please sign in again."
)


class TokenHandler(APIHandler):
    """``GET /hub/api/continuum/token[/<user>]``: a fresh access token of the user."""

    def initialize(self, refresher: TokenRefresher) -> None:
        self.refresher = refresher

    async def get(self, user_name: str | None = None) -> None:
        self.set_header("Cache-Control", "no-store")
        current = self.current_user
        if current is None:
            self.set_header("WWW-Authenticate", 'token realm="jupyterhub"')
            raise web.HTTPError(401, "an API token is required")
        if not getattr(self, "_token_authenticated", False):  # set by JupyterHub for tokens
            # a browser page (and any script injected into one) never sees the token
            raise web.HTTPError(403, "access tokens are handed to API tokens only")
        name = user_name or getattr(current, "name", None)
        user = self.find_user(name) if name else None
        allowed = self.get_scope_filter(SCOPE)
        if user is None or not allowed(user.orm_user, kind="user"):
            raise web.HTTPError(403, f"this token may not read the access token of {name}")
        if is_event_guest(user.name):
            # signed in with a workshop's guest code: there is no provider token, and "sign in
            # again" (401) would send their server's token agent after a sign-in never had
            raise web.HTTPError(404, "a workshop guest has no identity provider token")
        refreshed = await self.refresher.refresh_user(user, reread=False)
        if isinstance(refreshed, dict):
            await self.auth_to_user(refreshed, user)  # the groups follow the entitlements
        state = await user.get_auth_state() or {}
        token, expires_at = state.get("access_token"), state.get("expires_at")
        if not token:
            raise web.HTTPError(401, SIGN_IN_AGAIN)
        if isinstance(expires_at, int | float) and expires_at <= time.time():
            raise web.HTTPError(503, "the identity provider cannot refresh the token now")
        self.finish(json.dumps({"access_token": token, "expires_at": expires_at}))


class SignInAgainHandler(BaseHandler):
    """``GET /hub/continuum/sign-in-again``: the session ended; a link to sign in again."""

    async def get(self) -> None:
        next_url = self.get_argument("next", "")
        # only paths of this hub are passed on (the login handler checks them again)
        if not next_url.startswith("/") or next_url.startswith("//"):
            next_url = ""
        login = self.settings["login_url"]
        if next_url:
            login = url_concat(login, {"next": next_url})
        link = f'<a class="btn btn-primary" href="{escape(login, quote=True)}">Sign in again</a>'
        self.set_header("Cache-Control", "no-store")
        html = await self.render_template(
            "error.html",
            status_code=401,
            status_message="Sign in again",
            message=SIGN_IN_AGAIN,
            extra_error_html=link,
        )
        self.finish(html)


def send_to_sign_in_again(handler: Any, user: Any) -> None:
    """After a failed refresh in ``handler``'s request, end the browser session of ``user``.

    Only for the user's own browser requests (cookie-authenticated): their login cookie is
    cleared, and this request's redirect to the login page goes to the *sign in again* page
    instead (tornado's ``@web.authenticated`` asks ``get_login_url``).  API requests and
    other users' requests (admins, services) are left alone.
    """
    # the same test JupyterHub's refresh_auth makes to decide whether a login can be forced
    if getattr(handler, "_jupyterhub_user", None) is not user:
        return
    if getattr(handler, "_token_authenticated", False):
        return
    # JupyterHub 6.1 sets this only for token requests, yet its refresh_auth reads it after a
    # failed refresh (an AttributeError there would turn the redirect into a logged traceback)
    handler._token_authenticated = False
    handler.clear_login_cookie()
    url = url_path_join(handler.hub.base_url, SIGN_IN_AGAIN_ROUTE.lstrip("/"))
    handler.get_login_url = lambda: url


def token_handlers(refresher: TokenRefresher) -> list[tuple[Any, ...]]:
    """The token endpoint and the *sign in again* page, as routes below the hub's prefix
    (``FederatedAuthenticator.get_handlers`` returns them)."""
    return [
        (TOKEN_ROUTE, TokenHandler, {"refresher": refresher}),
        (USER_TOKEN_ROUTE, TokenHandler, {"refresher": refresher}),
        (SIGN_IN_AGAIN_ROUTE, SignInAgainHandler),
    ]


def add_token_scopes(c: Config) -> None:
    """Define :data:`SCOPE`, give every user it for themselves, put it in server tokens.

    Runs after all configuration layers (a deployment layer replaces lists and dicts rather
    than extending them) and keeps what they set.  ``Spawner.server_token_scopes`` set to a
    callable by a deployment is left alone: that deployment decides.
    """
    hub = c.JupyterHub
    custom = dict(hub.custom_scopes) if "custom_scopes" in hub else {}
    custom.setdefault(SCOPE, {"description": SCOPE_DESCRIPTION})
    hub.custom_scopes = custom
    extra = set(hub.extra_user_scopes) if "extra_user_scopes" in hub else set()
    hub.extra_user_scopes = extra | {f"{SCOPE}!user"}
    spawner = c.Spawner
    scopes = spawner.server_token_scopes if "server_token_scopes" in spawner else None
    if callable(scopes):
        return
    if not scopes:
        # setting server_token_scopes replaces the `server` role's scopes: start from those
        roles = list(hub.load_roles) if "load_roles" in hub else []
        role = next((r for r in roles if r.get("name") == "server"), {})
        scopes = role.get("scopes") or DEFAULT_SERVER_SCOPES
    scopes = list(scopes)
    if f"{SCOPE}!user" not in scopes:
        scopes.append(f"{SCOPE}!user")
    spawner.server_token_scopes = scopes
