"""The REST handlers of the catalogue service, under ``/services/catalogue/api/v1/``.

Every request is authenticated with a hub token (``Authorization: token …``) checked by
``jupyterhub.services.auth.HubAuth`` (:class:`~continuum_hub.service_api.HubServiceHandler`):
none or an unknown one → 401; a token without ``access:services!service=catalogue`` (or that
is not a user's) → 403.  The user's groups are read from the hub with the service's own token
(kept :data:`GROUPS_MAX_AGE` seconds), never taken from the request, and decide what the user
sees (:func:`~.model.visible`, applied by the sources and again here) and at which sites they
may ask for copies (the site registry's rules).

Bad input gets a 4xx with ``{"message": …}`` and never a stack trace: unknown parameters,
search text over :data:`~.model.MAX_QUERY_CHARS`, control characters, pages or offsets beyond
the limits, malformed ids, ``..`` segments in ids, unknown sources.  An entry that does not
exist and one the user may not see get the same 404.  :data:`ROUTES` is also what the OpenAPI
document (:mod:`.openapi`) describes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tornado import web

from ..service_api import HubServiceHandler
from ..workflows.credentials import HubUser
from . import ACCESS_SCOPE, API_PREFIX
from .fanout import health_json, search, seconds
from .model import Query, QueryError, make_query, split_id, visible
from .sources.base import ActionRefused, SourceUnavailable

log = logging.getLogger(__name__)

#: seconds a user's groups read from the hub are reused (searches come in bursts)
GROUPS_MAX_AGE = 10.0
#: the search's parameters: list-valued ones may repeat
LIST_PARAMS = {
    "source": "sources",
    "kind": "kinds",
    "vo": "vos",
    "site": "sites",
    "format": "formats",
}
SINGLE_PARAMS = ("q", "time_from", "time_to", "size_min", "size_max", "offset", "limit", "facets")
#: longest query string a search may have (the text's own limit is far below)
MAX_QUERY_STRING = 8192
#: request states that may still change (refreshed from the source when listed)
OPEN_STATES = frozenset({"requested", "replicating"})
REQUEST_ID = r"(q-[0-9a-f]{1,32})"
SOURCE_NAME_PATH = r"([a-z][a-z0-9_-]{0,31})"
#: largest body of a source query (a raw ADQL text is bounded far below by its source)
MAX_QUERY_BODY = 16384
#: seconds added to a source's query timeout before the service gives up on it
QUERY_MARGIN = 2.0


def visible_source(source: Any, groups: Any) -> bool:
    """Whether a user in ``groups`` may query ``source``: a source private to a VO (its ``vo``
    and ``visibility`` settings, as a TAP source has) only by that VO's members."""
    if getattr(source, "visibility", "public") != "vo":
        return True
    return bool(getattr(source, "vo", "")) and source.vo in set(groups)


def checked_id(entry_id: str) -> tuple[str, str]:
    """``source:identifier`` taken apart; :class:`QueryError` when malformed or when it climbs
    out of a folder (a ``..`` segment, a leading ``/``, a backslash)."""
    source, identifier = split_id(entry_id)
    parts = identifier.replace("\\", "/").split("/")
    if ".." in parts or identifier.startswith("/") or "\\" in identifier:
        raise QueryError("an entry id must not contain '..' segments, backslashes or a leading /")
    return source, identifier


async def ask(source: Any, call: Any, limit: float | None = None) -> Any:
    """Await a source's ``call`` within ``limit`` seconds (default: its search timeout);
    its failures as HTTP errors."""
    limit = source.timeout if limit is None else limit
    try:
        return await asyncio.wait_for(call, limit)
    except TimeoutError:
        raise web.HTTPError(504, f"{source.name} did not answer within {seconds(limit)}") from None
    except ActionRefused as exc:
        raise web.HTTPError(403, str(exc)) from None
    except SourceUnavailable as exc:
        raise web.HTTPError(503, f"{source.name} is unavailable: {exc}") from None
    except QueryError:
        raise
    except Exception:
        log.exception("Catalogue source %s failed", source.name)
        raise web.HTTPError(502, f"{source.name} failed; see the service's log") from None


class APIHandler(HubServiceHandler):
    """The catalogue's routes: the caller's groups kept a little, sources, store, queries."""

    access_scope = ACCESS_SCOPE
    service_label = "the catalogue service"
    request_error = QueryError

    @property
    def hub_client(self) -> Any:
        return self.settings["catalogue_hub"]

    @property
    def sources(self) -> dict[str, Any]:
        return self.settings["catalogue_sources"]  # type: ignore[no-any-return]

    @property
    def store(self) -> Any:
        return self.settings["catalogue_store"]

    async def hub_user(self, name: str) -> HubUser:
        cache: dict[str, tuple[float, HubUser]] = self.settings.setdefault("catalogue_users", {})
        kept = cache.get(name)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        user = await super().hub_user(name)
        cache[name] = (time.monotonic() + GROUPS_MAX_AGE, user)
        return user

    def query(self, **fields: Any) -> Query:
        """A validated query as this user (their name and hub groups)."""
        return make_query(user=self.user.name, groups=self.user.groups, **fields)

    def source(self, name: str) -> Any:
        """The source ``name`` (404 like a missing entry when there is none)."""
        if name not in self.sources:
            raise web.HTTPError(404, "no such entry")
        return self.sources[name]


class RootHandler(APIHandler):
    async def get(self) -> None:
        self.send({"version": 1})


class OpenAPIHandler(APIHandler):
    async def get(self) -> None:
        from .openapi import document

        self.send(document())


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise QueryError(f"{name} is not UTF-8 text") from None


class SearchHandler(APIHandler):
    """``GET search``: the selected sources asked at once, merged (:mod:`.fanout`)."""

    def search_query(self) -> Query:
        if len(self.request.query) > MAX_QUERY_STRING:
            raise QueryError(f"the query string is too long (at most {MAX_QUERY_STRING} bytes)")
        # raw values: tornado's own accessors silently drop control characters
        raw = self.request.query_arguments
        unknown = sorted(set(raw) - set(LIST_PARAMS) - set(SINGLE_PARAMS))
        if unknown:
            raise QueryError(f"unknown parameter {unknown[0][:40]!r}")
        fields: dict[str, Any] = {
            LIST_PARAMS[name]: [_text(v, name) for v in raw.get(name, [])] for name in LIST_PARAMS
        }
        single = {name: _text(raw[name][-1], name) for name in SINGLE_PARAMS if name in raw}
        facets = single.pop("facets", "0")
        fields.update(single)
        fields["text"] = fields.pop("q", "")
        fields["with_facets"] = facets in ("1", "true")
        query = self.query(**fields)
        unknown = [name for name in query.sources if name not in self.sources]
        if unknown:
            names = ", ".join(self.sources) or "none"
            raise QueryError(f"unknown source {unknown[0]!r}; sources are {names}")
        return query

    async def get(self) -> None:
        query = self.search_query()
        chosen = [self.sources[n] for n in query.sources] or list(self.sources.values())
        page, statuses = await search(chosen, query)
        self.send(
            {
                "entries": [entry.to_json() for entry in page.entries],
                "total": page.total,
                "offset": query.offset,
                "limit": query.limit,
                "facets": page.facets,
                "sources": [health_json(status) for status in statuses],
            }
        )


class EntryHandler(APIHandler):
    """``GET entries/{id}``: one entry (missing and not visible: the same 404)."""

    async def entry(self, entry_id: str) -> tuple[Any, Any]:
        name, identifier = checked_id(entry_id)
        source = self.source(name)
        # ?site= picks the replica whose access code the entry carries (the lab's panel)
        sites = self.get_query_arguments("site")[:1]
        entry = await ask(source, source.get(identifier, self.query(sites=sites)))
        if entry is None or entry.id != entry_id or not visible(entry, self.user.groups):
            raise web.HTTPError(404, "no such entry")
        return source, entry

    async def get(self, entry_id: str) -> None:
        _, entry = await self.entry(entry_id)
        self.send(entry.to_json())


class MakeAvailableHandler(EntryHandler):
    """``POST entries/{id}/make-available`` ``{"site"}``: a copy at a site the user may use."""

    async def post(self, entry_id: str) -> None:
        body = self.body()
        site = body.get("site") if isinstance(body, dict) else None
        if not isinstance(site, str) or not site or len(site) > 64:
            raise QueryError('the body must be {"site": "<site name>"}')
        registry = self.settings["catalogue_registry"]()
        if registry.get(site) is None:
            raise QueryError(f"unknown site {site[:64]!r}")
        if site not in {s.name for s in registry.for_groups(self.user.groups)}:
            raise web.HTTPError(403, f"you may not use site {site}")
        source, entry = await self.entry(entry_id)
        answer = await ask(source, source.make_available(entry.identifier, site, self.query()))
        record = self.store.add(self.user.name, entry.id, source.name, site, dict(answer))
        self.send(record, 201)


class QueryHandler(APIHandler):
    """``POST sources/{name}/query``: a source's own query (a TAP source's cone/time/band form
    or raw ADQL), checked and bounded by the source; waits for the source's ``query_timeout``
    (its searches' ``timeout`` when it has none) plus a margin for the answer to travel."""

    async def post(self, name: str) -> None:
        if len(self.request.body or b"") > MAX_QUERY_BODY:
            raise QueryError(f"the query is too large (at most {MAX_QUERY_BODY} bytes)")
        body = self.body()
        if not isinstance(body, dict):
            raise QueryError('the body must be a JSON object (a form\'s fields or {"adql": …})')
        source = self.source(name)
        if not visible_source(source, self.user.groups):
            raise web.HTTPError(404, "no such entry")
        timeout = float(getattr(source, "query_timeout", source.timeout)) + QUERY_MARGIN
        self.send(await ask(source, source.run_query(body, self.query()), timeout))


class SourcesHandler(APIHandler):
    """``GET sources``: each source's health, asked at once, each within its timeout."""

    async def get(self) -> None:
        from .fanout import bounded

        sources = list(self.sources.values())
        outcomes = await asyncio.gather(*(bounded(source, source.health()) for source in sources))
        listed = []
        for source, (health, status) in zip(sources, outcomes, strict=True):
            shown = health_json(status if health is None else health)
            if health is not None and shown["latency_ms"] is None:
                shown["latency_ms"] = status.latency_ms
            listed.append({**shown, "label": source.label or source.name})
        self.send({"sources": listed})


class RequestsHandler(APIHandler):
    """``GET requests``: the user's requests, open ones refreshed from their sources."""

    async def refreshed(self, request_id: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.owned(self.user.name, request_id)
        query = self.query()

        async def refresh(row: dict[str, Any]) -> None:
            source = self.sources.get(row["source"])
            if row["state"] not in OPEN_STATES or source is None:
                return
            try:
                answer = await ask(source, source.request_state(row["source_request"], query))
            except (web.HTTPError, QueryError) as exc:
                row["message"] = f"state not refreshed: {getattr(exc, 'log_message', exc)}"
                return
            row["state"] = str(answer.get("state", row["state"]))
            row["message"] = str(answer.get("message", ""))
            self.store.update(row["id"], row["state"], row["message"])

        await asyncio.gather(*(refresh(row) for row in rows))
        return rows  # type: ignore[no-any-return]

    async def get(self) -> None:
        self.send({"requests": await self.refreshed()})


class RequestHandler(RequestsHandler):
    """``GET requests/{id}``: one of the user's requests (another's: 404)."""

    async def get(self, request_id: str) -> None:  # type: ignore[override]
        rows = await self.refreshed(request_id)
        if not rows:
            raise web.HTTPError(404, "no such request")
        self.send(rows[0])


class NotFoundHandler(APIHandler):
    """Any other path: 404 in JSON (after authentication, like every route)."""

    async def get(self, *args: Any) -> None:
        raise web.HTTPError(404, "no such route")

    post = delete = put = get


#: (path below the API prefix, handler, {method: summary}) — the OpenAPI document's source
ROUTES: list[tuple[str, type[APIHandler], dict[str, str]]] = [
    ("/", RootHandler, {"get": "The API's version"}),
    ("/openapi.json", OpenAPIHandler, {"get": "This API's OpenAPI 3.1 document"}),
    ("/search", SearchHandler, {"get": "Search the sources (merged, with their status)"}),
    ("/sources", SourcesHandler, {"get": "The configured sources and their health"}),
    (
        f"/sources/{SOURCE_NAME_PATH}/query",
        QueryHandler,
        {"post": "Run a source's own query (TAP: cone/time/band form or raw ADQL), bounded"},
    ),
    (
        "/entries/(.+)/make-available",
        MakeAvailableHandler,
        {"post": "Ask for a copy of the entry at a site you may use"},
    ),
    ("/entries/(.+)", EntryHandler, {"get": "One entry with its metadata and replicas"}),
    ("/requests", RequestsHandler, {"get": "Your make-available requests, states refreshed"}),
    (f"/requests/{REQUEST_ID}", RequestHandler, {"get": "One of your requests"}),
]


def handlers() -> list[tuple[str, type[APIHandler]]]:
    """Tornado's URL specs under :data:`~continuum_hub.catalogue.API_PREFIX`."""
    found = [(API_PREFIX + path.rstrip("/") + "/?", handler) for path, handler, _ in ROUTES]
    found.append((API_PREFIX + r"(/.*)?", NotFoundHandler))
    return found
