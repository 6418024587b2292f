"""Calls from the user's server to the hub's services (Dask Gateway, workflows, catalogue): one
error type that carries the HTTP status to answer with, where a hub service's API is
(:func:`hub_service_api`), and one JSON request that turns every failure of the service into such
an error."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse


class ServiceError(Exception):
    """A request failed; ``status`` is the HTTP status to answer the browser with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class ServiceAPI:
    """Where a hub service's API is and the headers that authenticate (never logged)."""

    api: str
    headers: Mapping[str, str] = dataclasses.field(repr=False)


def hub_service_api(
    environ: Mapping[str, str],
    url: str,
    *,
    service: str,
    variable: str,
    describe: str,
    option: str = "",
    error: type[ServiceError] = ServiceError,
) -> ServiceAPI:
    """The API (``…/services/<service>/api/v1/``) of a hub service, seen from this server.

    The first of: ``url`` (an option: the service's prefix or its API), the environment's
    ``variable``, the hub's base taken from ``JUPYTERHUB_API_URL``
    (``http://hub:8081/hub/api`` → ``http://hub:8081/services/<service>/``).

    Parameters
    ----------
    environ
        The server's environment.
    url
        The configured URL, empty to use the environment.
    service
        The service's name.
    variable
        The environment variable that names the service's URL.
    describe
        The service in messages (``"catalogue service"``).
    option
        The ``ContinuumLab`` option that names the service's URL, for the message.
    error
        The :class:`ServiceError` subclass to raise.

    Raises
    ------
    ServiceError
        503 when nothing names the service or the server has no API token.
    """
    base = (url or environ.get(variable, "")).strip()
    if not base:
        hub_api = environ.get("JUPYTERHUB_API_URL", "").strip().rstrip("/")
        if hub_api.endswith("/hub/api"):
            base = hub_api[: -len("hub/api")] + f"services/{service}/"
    if not base.startswith(("http://", "https://")):
        names = ", ".join(n for n in (option, variable) if n)
        raise error(
            503,
            f"No {describe} is configured for this server ({names} or JUPYTERHUB_API_URL).",
        )
    base = base.rstrip("/") + "/"
    api = base if base.endswith("/api/v1/") else base + "api/v1/"
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise error(503, f"This server has no JupyterHub API token for the {describe}.")
    return ServiceAPI(api=api, headers={"Authorization": f"token {token}"})


def said(error: HTTPClientError, key: str) -> str:
    """What the service said was wrong: its JSON ``{key: …}`` body, else the HTTP reason."""
    response = error.response
    if response is not None and response.body:
        try:
            text = json.loads(response.body).get(key)
        except (ValueError, AttributeError):
            text = None
        if isinstance(text, str) and text:
            return text
    return response.reason if response is not None else str(error.message)


async def fetch_response(
    request: HTTPRequest,
    *,
    what: str,
    key: str,
    refusal: Callable[[int, str], tuple[int, str]],
    error: type[ServiceError] = ServiceError,
) -> HTTPResponse:
    """Send ``request``; the service's successful answer, as it came (for bodies not JSON).

    The parameters and errors are :func:`fetch_json`'s.
    """
    try:
        return await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        if exc.code == 599:  # tornado's code for "no HTTP answer" (refused, timeout)
            raise error(502, f"{what} cannot be reached: {exc.message}") from None
        raise error(*refusal(exc.code, said(exc, key))) from None
    except OSError as exc:
        raise error(502, f"{what} cannot be reached: {exc}") from None


async def fetch_json(
    request: HTTPRequest,
    *,
    what: str,
    key: str,
    refusal: Callable[[int, str], tuple[int, str]],
    error: type[ServiceError] = ServiceError,
) -> Any:
    """Send ``request``; the service's JSON answer (``None`` when it is empty).

    Parameters
    ----------
    request
        The request (its timeouts included).
    what
        The service in messages (``"The Dask Gateway at http://…"``).
    key
        The key of the service's error bodies (``"error"``, ``"message"``).
    refusal
        ``(HTTP status of the service, its reason) -> (status, message)`` to answer with.
    error
        The :class:`ServiceError` subclass to raise.

    Raises
    ------
    ServiceError
        502 when the service cannot be reached or does not answer JSON; ``refusal``'s choice
        when it answers an error status.
    """
    response = await fetch_response(request, what=what, key=key, refusal=refusal, error=error)
    if not response.body:
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        raise error(502, f"{what} did not answer JSON") from None
