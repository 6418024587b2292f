"""A catalogue source holding a fixed list of entries, for the catalogue service's own tests.

Configured as ``{"name": …, "kind": "continuum_federation.static_catalogue:StaticSource",
"entries": [...]}`` in ``CatalogueService.sources``; each entry is a dict of
:class:`~continuum_hub.catalogue.model.Entry` fields without ``id`` and ``source`` (made from
the source's name and ``identifier``).  It matches a search's words against titles and
descriptions and applies the query's filters and the visibility rule, as a real source must.

Test knobs, real behaviour rather than mocks: ``hang_word`` — a search containing it waits
``delay`` seconds (a source that hangs, cut off by the service's timeout); ``fail_word`` — a
search containing it fails.  *Make available* answers a request id that encodes the site, and
its state is ``replicating`` for ever (no transfer happens), so it is the same after a restart.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from traitlets import Float, List, Unicode

from continuum_hub.catalogue.model import (
    Entry,
    Page,
    Query,
    QueryError,
    Replica,
    SourceHealth,
    visible,
)
from continuum_hub.catalogue.sources.base import ActionRefused, CatalogueSource


class StaticSource(CatalogueSource):
    """A fixed list of entries (see the module's docstring)."""

    kind = "static"

    entries = List(
        [], config=True, help="The entries: dicts of Entry fields without id and source."
    )
    hang_word = Unicode("", config=True, help="A search containing this word waits `delay` s.")
    fail_word = Unicode("", config=True, help="A search containing this word fails.")
    delay = Float(30.0, config=True, help="Seconds a search with `hang_word` waits.")

    def _all(self) -> list[Entry]:
        found = []
        for spec in self.entries:
            fields = dict(spec)
            fields["replicas"] = [Replica(**r) for r in fields.get("replicas", [])]
            fields.setdefault("sites", sorted({r.site for r in fields["replicas"]}))
            identifier = fields.pop("identifier")
            found.append(
                Entry(
                    id=f"{self.name}:{identifier}",
                    source=self.name,
                    identifier=identifier,
                    **fields,
                )
            )
        return found

    def _matches(self, entry: Entry, query: Query) -> bool:
        words = query.text.lower().split()
        text = f"{entry.title} {entry.description}".lower()
        return (
            all(word in text for word in words)
            and (not query.kinds or entry.kind in query.kinds)
            and (not query.vos or entry.vo in query.vos)
            and (not query.sites or bool(set(entry.sites) & set(query.sites)))
            and (not query.formats or entry.format in query.formats)
        )

    async def search(self, query: Query) -> Page:
        words = query.text.lower().split()
        if self.hang_word and self.hang_word in words:
            await asyncio.sleep(self.delay)
        if self.fail_word and self.fail_word in words:
            raise RuntimeError(f"{self.name} was asked to fail")
        matches = [e for e in self._all() if visible(e, query.groups) and self._matches(e, query)]
        page = Page(matches[query.offset : query.offset + query.limit], total=len(matches))
        if query.with_facets:
            for facet in ("kind", "vo", "format"):
                counts: dict[str, int] = {}
                for entry in matches:
                    value = getattr(entry, facet)
                    if value:
                        counts[value] = counts.get(value, 0) + 1
                page.facets[facet] = counts
        return page

    async def get(self, identifier: str, query: Query) -> Entry | None:
        for entry in self._all():
            if entry.identifier == identifier and visible(entry, query.groups):
                return entry
        return None

    async def health(self) -> SourceHealth:
        return SourceHealth(self.name, self.kind, True, message=f"{len(self.entries)} entries")

    async def make_available(self, identifier: str, site: str, query: Query) -> dict[str, Any]:
        return {
            "id": f"static-{site}-{secrets.token_hex(4)}",
            "state": "requested",
            "site": site,
            "message": "",
        }

    async def request_state(self, request_id: str, query: Query) -> dict[str, Any]:
        parts = request_id.split("-")
        if len(parts) != 3 or parts[0] != "static":
            raise ActionRefused(f"{self.name} has no request {request_id[:40]}")
        return {"id": request_id, "state": "replicating", "site": parts[1], "message": ""}

    async def run_query(self, request: dict[str, Any], query: Query) -> dict[str, Any]:
        """A query language of one field: ``{"title_contains": WORD}`` → the visible entries
        whose title holds it, as rows of (id, title) — what a TAP source's answer looks like."""
        word = request.get("title_contains")
        if not isinstance(word, str) or not word:
            raise QueryError('a static source takes {"title_contains": "<word>"}')
        if self.hang_word and word == self.hang_word:
            await asyncio.sleep(self.delay)
        rows = [
            [entry.id, entry.title]
            for entry in self._all()
            if visible(entry, query.groups) and word.lower() in entry.title.lower()
        ]
        return {"columns": ["id", "title"], "rows": rows, "truncated": False, "message": ""}
