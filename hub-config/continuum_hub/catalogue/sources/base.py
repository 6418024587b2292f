"""The interface every catalogue source implements.

A source is a traitlets :class:`~traitlets.config.LoggingConfigurable`, configured from the
service's ``CatalogueApp.sources`` setting (its ``name`` is the id prefix of its entries).  The
service calls it concurrently with the others and bounds each call by the source's
``timeout``: a slow or failing source is reported as such and never blocks the others.
Methods are coroutines; a source doing blocking I/O (SQLite, a synchronous client) runs it in
a thread (:func:`asyncio.to_thread`).

Rules for implementers:

* apply :func:`~continuum_hub.catalogue.model.visible` to everything returned (the service
  checks again, but a source must not leak counts of private entries through facets or totals);
* never pass ``query.text`` or an identifier to a query language unescaped;
* raise :class:`~continuum_hub.catalogue.model.QueryError` for bad input (the user sees the
  message) and :class:`SourceUnavailable` when the backend cannot be reached.
"""

from __future__ import annotations

from typing import Any

from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from ..model import Entry, Page, Query, SourceHealth


class SourceUnavailable(RuntimeError):
    """The source's backend did not answer (shown on the source's health and in results)."""


class ActionRefused(RuntimeError):
    """A user may not do this action (e.g. make data available at a site they cannot use)."""


class CatalogueSource(LoggingConfigurable):
    """Base class of a catalogue source (see the module's rules)."""

    #: the kind's name (its entry point name)
    kind = "base"

    name = Unicode(config=True, help="The source's name: the prefix of its entries' ids.")
    label = Unicode("", config=True, help="Name shown in the panel (default: the name).")
    timeout = Float(
        5.0, config=True, help="Seconds the service waits for this source's answer to a search."
    )

    async def start(self) -> None:
        """Open connections, build or load indexes (called once when the service starts)."""

    async def stop(self) -> None:
        """Release what :meth:`start` took."""

    async def search(self, query: Query) -> Page:
        """Entries matching ``query`` that its user may see, newest relevant first."""
        raise NotImplementedError

    async def get(self, identifier: str, query: Query) -> Entry | None:
        """One entry with its metadata and replicas (``query`` carries user and groups), or
        ``None`` when it does not exist *or* the user may not see it (same answer, no oracle)."""
        raise NotImplementedError

    async def health(self) -> SourceHealth:
        """Whether the backend answers now."""
        return SourceHealth(name=self.name, kind=self.kind, ok=True)

    async def make_available(self, identifier: str, site: str, query: Query) -> dict[str, Any]:
        """Ask for a copy of the entry at ``site`` (a Rucio rule); returns the request's state
        as ``{"id", "state", "site", "message"}``.  Sources without transfers refuse."""
        raise ActionRefused(f"{self.label or self.name} cannot copy data to another site")

    async def request_state(self, request_id: str, query: Query) -> dict[str, Any]:
        """The state of a request made by :meth:`make_available` (same shape)."""
        raise ActionRefused(f"{self.label or self.name} has no such request")

    async def run_query(self, request: dict[str, Any], query: Query) -> dict[str, Any]:
        """Run a source-specific query (a TAP source's cone/time/band form or raw ADQL):
        ``request`` is the JSON the user posted; the answer is ``{"columns": [...], "rows":
        [[...]], "truncated": bool, "message": str}``, bounded by the source's limits.  Sources
        without a query language refuse."""
        raise ActionRefused(f"{self.label or self.name} takes no queries of its own")
