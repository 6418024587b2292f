"""Catalogue search from JupyterLab: what the *Catalogue* panel asks, through the user's server.

:class:`CatalogueManager` forwards the panel's requests to the hub's ``catalogue`` service (REST
below ``/services/catalogue/api/v1/``) with the server's own ``JUPYTERHUB_API_TOKEN``, which
carries ``access:services!service=catalogue``; the service decides what the user may see (their
groups come from the hub, never from here).  This side bounds what it forwards, so a panel (or a
script calling these routes) cannot make the server send the service a 10 kB query, a page of
10^9 entries or an id that walks out of the service's URL space: each is a 400 here, before any
request leaves.

Where the service is: ``ContinuumLab.catalogue_url``, else the server's
``CONTINUUM_CATALOGUE_URL``, else the hub's base derived from ``JUPYTERHUB_API_URL``.

:func:`usable_sites` turns the batch-run options (the sites, partitions and environments the
user may run on, which the hub's ``workflows`` service computes from the site registry, the
user's groups and accounts) into the sites the panel marks as usable for each replica.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import HTTPRequest
from traitlets import Any as AnyTrait
from traitlets.config import LoggingConfigurable

from .remote import ServiceAPI, ServiceError, fetch_json, hub_service_api

#: the facets a search may filter on (repeated query parameters, as the service takes them)
FACETS = ("source", "kind", "vo", "site", "format")
#: other filters passed on as single values
RANGES = ("time_from", "time_to", "size_min", "size_max")
#: longest search text (characters); the service's own bound
MAX_QUERY_CHARS = 512
#: values one facet may select at once, and their length
MAX_FILTER_VALUES = 20
MAX_FILTER_CHARS = 128
#: paging bounds (the service refuses deeper paging too)
MAX_LIMIT = 200
MAX_OFFSET = 10_000
#: an entry id: ``source:identifier`` (source a lowercase word)
ENTRY_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}:[^\x00-\x1f\x7f]{1,1024}$")
#: a source's name, a request's id, a site's name
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: largest body of a source query (the TAP form or raw ADQL)
MAX_QUERY_BYTES = 64 * 1024


class CatalogueError(ServiceError):
    """A catalogue request failed; ``status`` is the HTTP status to answer with."""


def service_refusal(code: int, reason: str) -> tuple[int, str]:
    """The status and message answering the service's error ``code`` with ``reason``: its
    4xx are the user's (passed on); its failures, redirects and a refused token are a 502."""
    if code >= 500 or code in (301, 302, 401):
        return 502, f"The catalogue service failed: {reason}"
    return code, reason


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise CatalogueError(400, f"{what} must be text")
    if len(value) > limit:
        raise CatalogueError(400, f"{what} is too long ({len(value)} characters, at most {limit})")
    if any(ord(ch) < 32 and ch != "\t" for ch in value):
        raise CatalogueError(400, f"{what} must not contain control characters")
    return value


def _bounded(value: str, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CatalogueError(400, f"{what} must be a whole number, not {value[:40]!r}") from None
    if not low <= number <= high:
        raise CatalogueError(400, f"{what} must be between {low} and {high}, not {number}")
    return number


def search_query(arguments: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """The service's search parameters from the route's query arguments, checked and bounded.

    Parameters
    ----------
    arguments
        Each parameter's values as the browser sent them: ``q``, the :data:`FACETS` (repeated),
        the :data:`RANGES`, ``offset``, ``limit``, ``facets`` (``1`` asks for facet counts).

    Raises
    ------
    CatalogueError
        400 naming what is not acceptable.
    """
    first = {k: v[0] for k, v in arguments.items() if v}
    query: list[tuple[str, str]] = [("q", _text(first.get("q", ""), "The search", MAX_QUERY_CHARS))]
    for facet in FACETS:
        values = [v for v in arguments.get(facet, []) if v]
        if len(values) > MAX_FILTER_VALUES:
            raise CatalogueError(400, f"at most {MAX_FILTER_VALUES} {facet} filters at once")
        query += [(facet, _text(v, f"A {facet} filter", MAX_FILTER_CHARS)) for v in values]
    for name in RANGES:
        if first.get(name):
            query.append((name, _text(first[name], name, 40)))
    offset = _bounded(first.get("offset", "0"), "offset", 0, MAX_OFFSET)
    limit = _bounded(first.get("limit", "50"), "limit", 1, MAX_LIMIT)
    query += [("offset", str(offset)), ("limit", str(limit))]
    if first.get("facets") in ("1", "true"):
        query.append(("facets", "1"))
    return query


def entry_id(value: object) -> str:
    """A catalogue entry id (``source:identifier``) from a request, URL-quoted whole (its ``/``
    too: an id cannot reach another route of the service); 400 unless it looks like one."""
    if not isinstance(value, str) or not ENTRY_ID.match(value):
        raise CatalogueError(400, f"Not a catalogue entry id (source:identifier): {value!r:.80}")
    return quote(value, safe="")


def name(value: object, what: str) -> str:
    """A source's, site's or request's name from a request (400 unless it looks like one)."""
    if not isinstance(value, str) or not NAME.match(value):
        raise CatalogueError(400, f"Not a {what}: {value!r:.80}")
    return value


def usable_sites(options: Any) -> list[dict[str, str]]:
    """``[{"name", "label"}]`` of the sites in the batch-run options (``{"sites": [...]}``):
    those the user may start work on (their groups allow it and they have an account there)."""
    sites = options.get("sites") if isinstance(options, dict) else None
    return [
        {"name": str(s["name"]), "label": str(s.get("label") or s["name"])}
        for s in sites or []
        if isinstance(s, dict) and isinstance(s.get("name"), str)
    ]


class CatalogueManager(LoggingConfigurable):
    """Forwards the *Catalogue* panel's requests to the ``catalogue`` service.

    Its parent is the :class:`~continuum_lab.config.ContinuumLab` whose ``catalogue_url`` and
    ``catalogue_timeout`` apply.
    """

    environ = AnyTrait(help="The server's environment (a mapping); os.environ unless tests set it.")

    def _environ_default(self) -> Mapping[str, str]:
        return dict(os.environ)

    @property
    def endpoint(self) -> ServiceAPI:
        """The service this server uses (raises :class:`CatalogueError` when there is none)."""
        return hub_service_api(
            self.environ,
            str(getattr(self.parent, "catalogue_url", "")),
            service="catalogue",
            variable="CONTINUUM_CATALOGUE_URL",
            describe="catalogue service",
            option="ContinuumLab.catalogue_url",
            error=CatalogueError,
        )

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """``method`` the service's ``api/v1/<path>``; its JSON answer.

        Raises
        ------
        CatalogueError
            The service's 4xx with its message; 502 when it fails or cannot be reached.
        """
        endpoint = self.endpoint
        timeout = float(getattr(self.parent, "catalogue_timeout", 30.0))
        headers = {**endpoint.headers, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            endpoint.api + path,
            method=method,
            headers=headers,
            body=None if body is None else json.dumps(body),
            connect_timeout=min(timeout, 10.0),
            request_timeout=timeout,
            follow_redirects=False,
        )
        return await fetch_json(
            request,
            what="The catalogue service",
            key="message",
            refusal=service_refusal,
            error=CatalogueError,
        )

    async def search(self, arguments: Mapping[str, list[str]]) -> Any:
        """One page of results, with facet counts and each source's state when asked."""
        return await self.call("GET", "search?" + urlencode(search_query(arguments)))

    async def entry(self, identifier: object, site: object = "") -> Any:
        """One entry with its metadata and replicas; its code opens the replica at ``site``
        (the service's default replica when empty)."""
        suffix = f"?{urlencode({'site': name(site, 'site')})}" if site else ""
        return await self.call("GET", f"entries/{entry_id(identifier)}{suffix}")

    async def sources(self) -> Any:
        """The configured sources and their health."""
        return await self.call("GET", "sources")

    async def make_available(self, identifier: object, site: object) -> Any:
        """Ask for a copy of the entry at ``site``; the request's first state."""
        path = f"entries/{entry_id(identifier)}/make-available"
        answer = await self.call("POST", path, {"site": name(site, "site")})
        self.log.info("continuum_lab: asked for %s at %s", identifier, site)
        return answer

    async def request_state(self, request_id: object) -> Any:
        """The state of a *make available* request (the service asks its source again)."""
        return await self.call("GET", f"requests/{quote(name(request_id, 'request id'))}")

    async def query(self, source: object, request: object) -> Any:
        """Run a source's own query (a TAP source's form or ADQL): columns and bounded rows."""
        if not isinstance(request, dict):
            raise CatalogueError(400, "The query must be a JSON object")
        if len(json.dumps(request)) > MAX_QUERY_BYTES:
            raise CatalogueError(413, f"The query is larger than {MAX_QUERY_BYTES // 1024} kB")
        return await self.call("POST", f"sources/{quote(name(source, 'source'))}/query", request)
