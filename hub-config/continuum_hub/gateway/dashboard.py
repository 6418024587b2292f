"""Dashboards open only to their cluster's owner (dask-gateway#570).

Upstream, the gateway's proxy routes ``/clusters/<name>/`` straight to the scheduler's dashboard:
anyone who learns a cluster's name sees its dashboard, and with it the user's data and code.
Here the proxy gets no dashboard routes; ``/clusters/<name>/...`` reaches the gateway's own web
application (the proxy's catch-all route), where :class:`DashboardProxy` decides who may see it
and only then relays the request (HTTP and the Bokeh websocket) to the dashboard:

* an API client sends ``Authorization: jupyterhub <token>`` (a hub token with
  ``access:services!service=dask-gateway``), checked by the gateway's authenticator;
* a browser signs in with the hub's OAuth (the gateway is the hub service ``dask-gateway``;
  the hub skips the confirmation page for it): no session → redirect to the hub's authorize
  page, back at ``oauth_callback`` the code is exchanged for a token, the token for the user's
  name, and a signed, HttpOnly session cookie limited to the gateway's path keeps the name;
* the name must be the cluster's owner: anyone else gets 403, before any byte of the dashboard.

Neither our cookies nor the ``Authorization`` header are passed on to the dashboard.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

SESSION_COOKIE = "continuum-dask-dashboard"
STATE_COOKIE = "continuum-dask-oauth-state"
HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailers", "Transfer-Encoding", "Upgrade", "Host", "Authorization", "Cookie",
        "Content-Length", "Content-Encoding",
    )
)  # fmt: skip


class Signer:
    """HMAC-signed, expiring cookie values (``base64(json).expiry.signature``)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()

    def sign(self, value: Any, max_age: int) -> str:
        data = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
        payload = f"{data}.{int(time.time()) + max_age}"
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, text: str | None) -> Any:
        """The signed value, or ``None`` if ``text`` is missing, forged or expired."""
        if not text or text.count(".") != 2:
            return None
        data, expiry, mac = text.split(".")
        if not hmac.compare_digest(mac, self._mac(f"{data}.{expiry}")):
            return None
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        return json.loads(base64.urlsafe_b64decode(data))


class DashboardProxy:
    """The gateway's dashboard routes (added to its web application by the backend).

    Parameters
    ----------
    backend
        The gateway backend (clusters by name).
    prefix
        The gateway's public path prefix (``/services/dask-gateway``).
    cookie_secret
        Key of the session cookies.
    session_seconds
        Lifetime of a browser session.
    """

    def __init__(self, backend: Any, prefix: str, cookie_secret: bytes, session_seconds: int):
        self.backend = backend
        self.prefix = prefix.rstrip("/")
        self.signer = Signer(cookie_secret)
        self.session_seconds = session_seconds
        self.api_url = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
        self.client_id = os.environ.get("JUPYTERHUB_CLIENT_ID", "")
        self.client_secret = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.callback = os.environ.get(
            "JUPYTERHUB_OAUTH_CALLBACK_URL", f"{self.prefix}/oauth_callback"
        )
        # the browser is on the hub's origin: the hub's own path is enough
        base = os.environ.get("JUPYTERHUB_HOST", "") + os.environ.get("JUPYTERHUB_BASE_URL", "/")
        self.authorize_url = base + "hub/api/oauth2/authorize"

    def install(self, app: web.Application) -> None:
        app.router.add_get("/oauth_callback", self.oauth_callback)
        app.router.add_route("*", "/clusters/{cluster_name}/{tail:.*}", self.dashboard)
        app.router.add_route("*", "/clusters/{cluster_name}", self.dashboard)

    # -- who is asking ---------------------------------------------------------------------------

    async def username(self, request: web.Request) -> str | None:
        """The requester's hub name (API token or browser session), ``None`` if unknown."""
        header = request.headers.get("Authorization", "")
        if header:
            try:
                user = await request.app["authenticator"].authenticate(request)
            except web.HTTPException:
                raise web.HTTPForbidden(reason="this token may not use the Dask Gateway") from None
            return (user[0] if isinstance(user, tuple) else user).name
        return self.signer.unsign(request.cookies.get(SESSION_COOKIE))

    def login_redirect(self, request: web.Request) -> web.HTTPFound:
        state = secrets.token_urlsafe(24)
        target = self.prefix + request.path_qs
        query = urlencode(
            {
                "client_id": self.client_id,
                "redirect_uri": self.callback,
                "response_type": "code",
                "state": state,
            }
        )
        response = web.HTTPFound(f"{self.authorize_url}?{query}")
        response.set_cookie(
            STATE_COOKIE,
            self.signer.sign({"state": state, "next": target}, 600),
            path=self.prefix + "/",
            httponly=True,
            samesite="Lax",
            max_age=600,
        )
        return response

    async def oauth_callback(self, request: web.Request) -> web.StreamResponse:
        saved = self.signer.unsign(request.cookies.get(STATE_COOKIE)) or {}
        state = request.query.get("state", "")
        if not saved or not hmac.compare_digest(state, saved.get("state", "")):
            raise web.HTTPForbidden(reason="OAuth state mismatch: open the dashboard link again")
        code = request.query.get("code", "")
        session: aiohttp.ClientSession = self.backend.session
        form = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback,
        }
        async with session.post(f"{self.api_url}/oauth2/token", data=form) as resp:
            if resp.status != 200:
                raise web.HTTPForbidden(reason="the hub refused the sign-in code")
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"token {token}"}
        async with session.get(f"{self.api_url}/user", headers=headers) as resp:
            if resp.status != 200:
                raise web.HTTPForbidden(reason="the hub did not identify the user")
            name = (await resp.json())["name"]
        target = saved.get("next", "")
        if not target.startswith(self.prefix + "/clusters/"):
            target = self.prefix + "/api/health"  # never redirect off the gateway
        response = web.HTTPFound(target)
        response.set_cookie(
            SESSION_COOKIE,
            self.signer.sign(name, self.session_seconds),
            path=self.prefix + "/",
            httponly=True,
            samesite="Lax",
            max_age=self.session_seconds,
        )
        response.del_cookie(STATE_COOKIE, path=self.prefix + "/")
        return response

    # -- relaying ----------------------------------------------------------------------------------

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["cluster_name"]
        user = await self.username(request)
        if user is None:
            if request.method in ("GET", "HEAD"):
                raise self.login_redirect(request)
            raise web.HTTPForbidden(reason="sign in to see this dashboard")
        cluster = await self.backend.get_cluster(name)
        if cluster is None or cluster.username != user:
            # the same answer for someone else's cluster and no cluster: names are not revealed
            raise web.HTTPForbidden(reason=f"cluster {name} is not yours")
        if not cluster.dashboard_address:
            raise web.HTTPServiceUnavailable(reason=f"cluster {name} has no dashboard yet")
        tail = request.match_info.get("tail", "")
        target = f"{cluster.dashboard_address}/{tail}"
        if request.query_string:
            target += f"?{request.query_string}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, target)
        return await self._http(request, target, f"{self.prefix}/clusters/{name}")

    async def _http(self, request: web.Request, target: str, mount: str) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        session: aiohttp.ClientSession = self.backend.session
        async with session.request(
            request.method,
            target,
            headers=headers,
            data=await request.read() if request.body_exists else None,
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
            location = out.get("Location", "")
            if location.startswith("/"):
                out["Location"] = mount + location  # keep redirects below the cluster's path
            return web.Response(status=resp.status, headers=out, body=body)

    async def _websocket(self, request: web.Request, target: str) -> web.WebSocketResponse:
        server = web.WebSocketResponse()
        await server.prepare(request)
        session: aiohttp.ClientSession = self.backend.session
        async with session.ws_connect("ws" + target.removeprefix("http")) as client:

            async def pump(source: Any, sink: Any) -> None:
                async for msg in source:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(msg.data)
                    else:
                        break

            tasks = [asyncio.ensure_future(pump(server, client)),
                     asyncio.ensure_future(pump(client, server))]  # fmt: skip
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        await server.close()
        return server
