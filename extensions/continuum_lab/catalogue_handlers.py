"""The catalogue routes of ``continuum_lab`` (``{base_url}continuum/catalogue/…``).

Thin authenticated handlers over :class:`~continuum_lab.catalogue.CatalogueManager`, which calls
the hub's catalogue service: search, one entry, the sources, the sites a user may start work on
(from the batch-run options), *make available* requests and a source's own query.
:data:`ROUTES` is part of :data:`continuum_lab.handlers.ROUTES`.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from .catalogue import usable_sites
from .handler_base import ContinuumHandler, ServiceHandler
from .remote import ServiceError


class CatalogueSearchHandler(ServiceHandler):
    """``GET /continuum/catalogue/search?q=…&site=…&offset=…&limit=…&facets=1``: one page."""

    @web.authenticated
    async def get(self) -> None:
        arguments = {k: self.get_query_arguments(k) for k in self.request.query_arguments}
        await self.forward(lambda: self.catalogue.search(arguments))


class CatalogueEntryHandler(ServiceHandler):
    """``GET /continuum/catalogue/entry?id=…&site=…``: one entry, its code for ``site``."""

    @web.authenticated
    async def get(self) -> None:
        entry, site = self.get_query_argument("id", ""), self.get_query_argument("site", "")
        await self.forward(lambda: self.catalogue.entry(entry, site))


class CatalogueSourcesHandler(ServiceHandler):
    """``GET /continuum/catalogue/sources``: the sources and their health."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.catalogue.sources)


class CatalogueSitesHandler(ServiceHandler):
    """``GET /continuum/catalogue/sites``: the sites this user may start work on (from the
    batch-run options); ``known`` is false, with the reason, when they cannot be asked."""

    @web.authenticated
    async def get(self) -> None:
        try:
            body = {"sites": usable_sites(await self.workflows.options()), "known": True}
        except ServiceError as error:
            body = {"sites": [], "known": False, "message": error.message}
        self.reply(body)


class CatalogueAvailableHandler(ServiceHandler):
    """``POST /continuum/catalogue/make-available`` ``{"id", "site"}``: ask for a copy."""

    @web.authenticated
    async def post(self) -> None:
        async def ask() -> Any:
            body = self.json_object()
            return await self.catalogue.make_available(body.get("id"), body.get("site"))

        await self.forward(ask, status=202)


class CatalogueRequestHandler(ServiceHandler):
    """``GET /continuum/catalogue/request?id=``: a *make available* request's state."""

    @web.authenticated
    async def get(self) -> None:
        request_id = self.get_query_argument("id", "")
        await self.forward(lambda: self.catalogue.request_state(request_id))


class CatalogueQueryHandler(ServiceHandler):
    """``POST /continuum/catalogue/query`` ``{"source", "query"}``: a source's own query."""

    @web.authenticated
    async def post(self) -> None:
        async def run() -> Any:
            body = self.json_object()
            return await self.catalogue.query(body.get("source"), body.get("query"))

        await self.forward(run)


# (path below {base_url}continuum/, handler class)
ROUTES: list[tuple[str, type[ContinuumHandler]]] = [
    ("catalogue/search", CatalogueSearchHandler),
    ("catalogue/entry", CatalogueEntryHandler),
    ("catalogue/sources", CatalogueSourcesHandler),
    ("catalogue/sites", CatalogueSitesHandler),
    ("catalogue/make-available", CatalogueAvailableHandler),
    ("catalogue/request", CatalogueRequestHandler),
    ("catalogue/query", CatalogueQueryHandler),
]
