"""``HubTokenAuthenticator``: dask-gateway's JupyterHub authenticator, with two changes.

* A token the hub does not know (expired, revoked, made up) gets 401.  The hub's
  ``GET /hub/api/user`` answers 403 to it, which upstream turns into HTTP 500 ("Permission failure
  verifying user's JupyterHub API token") — a broken-looking gateway for a user's mistake.  That
  endpoint needs nothing beyond a valid token, so 403 there means exactly "not a valid token".
* A token that may also read the user's access token (``custom:continuum-token:read``, which
  servers' tokens carry) stays with the authenticated user as ``user.hub_token``: the token a
  cluster is created with is what its jobs' token agent uses to keep ``BEARER_TOKEN_FILE`` fresh
  (``SiteJobs.token_setup`` in :mod:`.jobs`).  Other tokens are not kept.

As upstream, with ``jupyterhub_service_name`` set only tokens with
``access:services!service=<name>`` are accepted.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator, unauthorized
from dask_gateway_server.models import User

#: the scope of the hub's access-token API (``continuum_hub.identity.token_api.SCOPE``; not
#: imported, which would load the hub's request handlers into the gateway)
TOKEN_SCOPE = "custom:continuum-token:read"  # noqa: S105 - a scope name


class HubTokenAuthenticator(JupyterHubAuthenticator):
    """Authenticate with hub tokens (``Authorization: jupyterhub TOKEN``)."""

    async def authenticate(self, request: web.Request) -> Any:
        token = self.get_token(request)
        if token is None:
            raise unauthorized("jupyterhub")
        headers = {"Authorization": f"token {token}"}
        url = f"{self.jupyterhub_api_url}/user"
        async with self.session.get(url, headers=headers, ssl=self.ssl_context) as resp:
            if resp.status in (401, 403, 404):
                raise unauthorized("jupyterhub")  # not a valid token
            if resp.status >= 400:
                self.log.error("The hub answered %s to a token check", resp.status)
                raise web.HTTPBadGateway(reason="the hub could not check the token")
            data = await resp.json()
        name = data["name"]
        if data.get("kind") != "user" or ":" in name:
            name = f"{data.get('kind')}:{name}"  # never mistaken for a user of that name
        scopes = set(data.get("scopes", []))
        if self.use_service_access_scopes:
            wanted = {"access:services", f"access:services!service={self.jupyterhub_service_name}"}
            if not wanted & scopes:
                self.log.debug("Token of %s lacks access to %s", name, self.jupyterhub_service_name)
                raise unauthorized("jupyterhub")
        user = User(name, groups=data.get("groups", []), admin=data.get("admin", False))
        readable = any(s == TOKEN_SCOPE or s.startswith(f"{TOKEN_SCOPE}!") for s in scopes)
        user.hub_token = token if readable else None  # type: ignore[attr-defined]
        return user
