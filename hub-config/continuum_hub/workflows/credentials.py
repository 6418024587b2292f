"""The hub's REST API as the workflow service uses it, and the runs' credentials.

With its own token (``JUPYTERHUB_API_TOKEN``, role ``workflows-service``: ``read:users``,
``read:users:groups``, ``tokens``) the service reads a user's groups and admin flag (the spawn
form's rules need the groups), and mints, lists and revokes hub tokens of users.

A run's credential is a hub API token of its owner that the service mints at submit: scope
``custom:continuum-token:read!user=<owner>`` only (it can read the owner's fresh provider access
token through ``GET /hub/api/continuum/token/<owner>``, nothing else: it cannot start servers or
call this service), lifetime ``WorkflowService.max_credential_days`` (the run must be able to
refresh until it ends, however long it queues), revoked by the service as soon as the run ends
and by its owner at any time (``DELETE …/credentials/{id}``).  The token is written 0600 into the
run folder, where the job's ``continuum-token-agent`` uses it to keep ``BEARER_TOKEN_FILE``
fresh, and kept in the service's database (0600) so that the service can tell when the owner
must sign in again (:meth:`HubClient.check_run_token`).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .store import now, public_credential
from .validation import RequestError

log = logging.getLogger(__name__)

#: the scope of the hub's access-token API (``continuum_hub.identity.token_api.SCOPE``; not
#: imported, which would load the hub's request handlers into the service)
TOKEN_SCOPE = "custom:continuum-token:read"  # noqa: S105 - a scope name
#: the hub API scopes of the service's own role
SERVICE_SCOPES = ["read:users", "read:users:groups", "tokens"]
#: what the hub's token endpoint answers when the provider session has ended (token_api)
SIGN_IN_AGAIN_MARK = "sign in again"


class HubError(RuntimeError):
    """The hub refused or failed a request; ``status`` is its HTTP status (0: unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HubUser:
    """What the service needs to know of a hub user."""

    name: str
    admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)


class HubClient:
    """Calls of the hub's REST API with the service's token.

    Parameters
    ----------
    api_url
        The hub's API (``JUPYTERHUB_API_URL``, ending in ``/hub/api``).
    token
        The service's token (never logged).
    """

    def __init__(self, api_url: str, token: str, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    async def _request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        request = HTTPRequest(
            f"{self.api_url}{path}",
            method=method,
            headers={
                "Authorization": f"token {token or self._token}",
                "Content-Type": "application/json",
            },
            body=None if body is None else json.dumps(body),
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise HubError(f"the hub cannot be reached: {exc}") from None
        if response.code == 599:
            raise HubError(f"the hub cannot be reached: {response.error}")
        text = response.body.decode("utf-8", "replace") if response.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return response.code, data

    async def user(self, name: str) -> HubUser:
        """The user ``name`` (groups and admin flag as the hub has them now)."""
        code, data = await self._request("GET", f"/users/{quote(name, safe='')}")
        if code != 200 or not isinstance(data, dict):
            raise HubError(f"the hub answered {code} for user {name}", code)
        return HubUser(name, bool(data.get("admin")), frozenset(data.get("groups") or ()))

    async def mint_token(self, owner: str, expires_in: int, note: str) -> tuple[str, str]:
        """A new hub token of ``owner`` for a run: ``(token id, token)``."""
        body = {
            "scopes": [f"{TOKEN_SCOPE}!user={owner}"],
            "expires_in": int(expires_in),
            "note": note,
        }
        code, data = await self._request("POST", f"/users/{quote(owner, safe='')}/tokens", body)
        if code not in (200, 201) or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else ""
            raise HubError(f"the hub did not make a run token ({code}): {message}", code)
        return str(data["id"]), str(data["token"])

    async def revoke_token(self, owner: str, token_id: str) -> None:
        """Delete the hub token ``token_id`` of ``owner`` (gone already: fine)."""
        path = f"/users/{quote(owner, safe='')}/tokens/{quote(token_id, safe='')}"
        code, _ = await self._request("DELETE", path)
        if code not in (200, 204, 404):
            raise HubError(f"the hub did not revoke token {token_id} ({code})", code)

    async def check_run_token(self, owner: str, token: str) -> str:
        """What the hub says when the run's token asks for the owner's access token.

        Returns
        -------
        str
            ``"ok"`` (the job's token agent can refresh), ``"sign-in"`` (the provider session
            ended: the owner must sign in again) or ``"revoked"`` (the run token is no longer
            valid).  Raises :class:`HubError` when the hub cannot tell (unreachable, 5xx).
        """
        code, data = await self._request(
            "GET", f"/continuum/token/{quote(owner, safe='')}", token=token
        )
        if code == 200:
            return "ok"
        message = data.get("message", "") if isinstance(data, dict) else str(data or "")
        if code == 401 and SIGN_IN_AGAIN_MARK in message.lower():
            return "sign-in"
        if code in (401, 403):
            return "revoked"
        raise HubError(f"the hub answered {code} to a run token check", code)


class RunCredentials:
    """The runs' credentials: minted at a run's first submission, revoked when it ends.

    Parameters
    ----------
    max_days
        Lifetime of a run's token in days (a workflow may ask for less).
    """

    def __init__(self, store: Any, hub: Any, max_days: int) -> None:
        self.store = store
        self.hub = hub
        self.max_days = max_days

    async def token_for(self, run: dict[str, Any]) -> str | None:
        """The run's hub token, minted on first use (``None`` once revoked)."""
        if run["credential_id"]:
            found = self.store.credential(run["credential_id"])
            return found["token"] if found is not None and not found["revoked"] else None
        days = min(run.get("credential_days") or self.max_days, self.max_days)
        seconds = days * 86400
        token_id, token = await self.hub.mint_token(
            run["owner"], seconds, f"workflows: run {run['id']}"
        )
        credential_id = f"c-{secrets.token_hex(6)}"
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
        self.store.add_credential(
            {
                "id": credential_id,
                "owner": run["owner"],
                "run_id": run["id"],
                "workflow_id": run["workflow_id"],
                "hub_token_id": token_id,
                "token": token,
                "created": now(),
                "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "revoked": False,
            }
        )
        self.store.update_run(run["id"], credential_id=credential_id)
        return token

    async def end(self, run: dict[str, Any]) -> None:
        """Revoke a finished run's credential (the hub unreachable: tried at its next end)."""
        stored = self.store.run(run["id"]) or run
        found = self.store.credential(stored["credential_id"]) if stored["credential_id"] else None
        if found is None or found["revoked"]:
            return
        try:
            await self.hub.revoke_token(found["owner"], found["hub_token_id"])
        except HubError as exc:
            log.warning("Could not revoke the credential %s of a run: %s", found["id"], exc)
            return  # it expires anyway
        self.store.update_credential(found["id"], revoked=True, token=None)

    def listed(self, owner: str) -> list[dict[str, Any]]:
        """``GET credentials``: the owner's credentials, never their tokens."""
        return [public_credential(c) for c in self.store.credentials(owner)]

    async def revoke(self, owner: str, credential_id: str) -> str | None:
        """``DELETE credentials/{id}``: the owner revokes one; the run it served, if live.

        The run goes on (its job keeps its current access token until that expires); its
        token agent's next refresh fails, and the run shows ``credential revoked``.
        """
        found = self.store.credential(credential_id)
        if found is None:
            raise RequestError(f"no credential {credential_id[:40]}", 404)
        if found["owner"] != owner:
            raise RequestError("not your credential", 403)
        if not found["revoked"]:
            await self.hub.revoke_token(found["owner"], found["hub_token_id"])
            self.store.update_credential(credential_id, revoked=True, token=None)
        return found["run_id"]
