"""Calls from the user's server to the hub's services (Dask Gateway, workflows): one error type
that carries the HTTP status to answer with, and one JSON request that turns every failure of
the service into such an error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class ServiceError(Exception):
    """A request failed; ``status`` is the HTTP status to answer the browser with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        if exc.code == 599:  # tornado's code for "no HTTP answer" (refused, timeout)
            raise error(502, f"{what} cannot be reached: {exc.message}") from None
        raise error(*refusal(exc.code, said(exc, key))) from None
    except OSError as exc:
        raise error(502, f"{what} cannot be reached: {exc}") from None
    if not response.body:
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        raise error(502, f"{what} did not answer JSON") from None
