"""The user's usage from JupyterLab: what the *Usage* panel asks, through the user's server.

:class:`UsageManager` forwards the panel's request to the hub's ``GET /hub/api/continuum/usage``
(core-hours, GPU-hours, kWh and CO2e of the user's jobs, budgets left, sites whose accounting is
late) with the server's own ``JUPYTERHUB_API_TOKEN``: the hub answers for the token's user, so
a server shows its own user's usage and nobody else's (the ``user`` parameter is never
forwarded).  The other filters are bounded here, so the route cannot make the server send the
hub anything but a short, known query; ``format=csv`` passes the hub's CSV on as it comes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import HTTPRequest
from traitlets import Any as AnyTrait
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from .remote import ServiceError, fetch_response

#: the filters passed on to the hub (its own checks apply too: a range of centuries is a 400)
FILTERS = ("from", "to", "site", "kind", "vo")
#: an ISO date or time, as the hub takes it
WHEN = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]{2,15}(Z|[+-]\d{2}:?\d{2})?)?$")
#: a site's, kind's or VO's name
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
FORMATS = ("json", "csv")


@dataclass(frozen=True)
class UsageAnswer:
    """The hub's answer: JSON (``body`` parsed) or CSV (``text``)."""

    content_type: str
    body: Any = None
    text: bytes = b""


def refusal(code: int, reason: str) -> tuple[int, str]:
    """The status and message answering the hub's error ``code`` with ``reason``: its 400 and
    403 are the user's (passed on); a hub without the usage API is a 503; anything else a 502."""
    if code in (400, 403):
        return code, reason
    if code == 404:
        return 503, "This hub does not report usage (no /hub/api/continuum/usage)."
    if code >= 500:  # the hub's own failure: its words are for its log, not the panel
        return 502, f"The hub's usage report failed (HTTP {code}); try again later."
    return 502, f"The hub's usage report failed: {reason}"


def usage_query(arguments: Mapping[str, str]) -> dict[str, str]:
    """The query to send the hub: the known filters, checked; ``format`` when not JSON.

    Raises
    ------
    ServiceError
        400 for a value that is not a date (``from``, ``to``), not a name, or an unknown format.
    """
    query: dict[str, str] = {}
    for key in FILTERS:
        value = arguments.get(key, "").strip()
        if not value:
            continue
        pattern = WHEN if key in ("from", "to") else NAME
        if not pattern.match(value):
            raise ServiceError(400, f"{key}={value[:40]!r} is not a valid {key}")
        query[key] = value
    fmt = arguments.get("format", "").strip() or "json"
    if fmt not in FORMATS:
        raise ServiceError(400, f"format must be json or csv, not {fmt[:20]!r}")
    if fmt == "csv":
        query["format"] = "csv"
    return query


class UsageManager(LoggingConfigurable):
    """Asks the hub for the user's usage (see the module's docstring)."""

    timeout = Float(
        20.0,
        config=True,
        help="""Seconds to wait for the hub's usage report before the *Usage* panel reports
        it unreachable (default 20).""",
    )

    refresh_seconds = Int(
        60,
        config=True,
        help="""Seconds between two refreshes of the *Usage* panel (default 60; the hub's
        collector itself asks the sites' accounting every few minutes).""",
    )

    environ = AnyTrait(
        help="The server's environment (a mapping); the process environment unless a test sets it."
    )

    def _environ_default(self) -> Mapping[str, str]:
        return dict(os.environ)

    def _request(self, query: Mapping[str, str]) -> HTTPRequest:
        api = self.environ.get("JUPYTERHUB_API_URL", "").strip().rstrip("/")
        token = self.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not api.startswith(("http://", "https://")) or not token:
            raise ServiceError(503, "This server does not run under a hub: no usage to show.")
        url = f"{api}/continuum/usage"
        if query:
            url += "?" + urlencode(query)
        return HTTPRequest(
            url,
            headers={"Authorization": f"token {token}"},
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
        )

    async def report(self, arguments: Mapping[str, str]) -> UsageAnswer:
        """The hub's report for this server's user, filtered by ``arguments`` (see
        :func:`usage_query`); JSON answers carry the panel's ``refresh_seconds``.

        Raises
        ------
        ServiceError
            400 for bad filters, the hub's 400/403, 502/503 when it cannot answer.
        """
        query = usage_query(arguments)
        response = await fetch_response(
            self._request(query), what="The hub", key="message", refusal=refusal
        )
        if query.get("format") == "csv":
            return UsageAnswer("text/csv; charset=utf-8", text=response.body or b"")
        try:
            body = json.loads(response.body or b"")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ServiceError(502, "The hub's usage report is not a JSON object")
        body["refresh_seconds"] = self.refresh_seconds
        return UsageAnswer("application/json", body=body)
