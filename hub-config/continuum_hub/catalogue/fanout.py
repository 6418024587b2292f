"""One search over many sources: asked concurrently, each bounded by its timeout, then merged.

:func:`search` asks every selected source at once (:func:`asyncio.wait_for` with the source's
``timeout``), so a slow or failing source costs at most its timeout and never blocks the others;
each source's outcome is reported as a :class:`~.model.SourceHealth` (``ok``, ``latency_ms``,
``message``: ``"timed out after 5 s"``, ``"unavailable: …"``, ``"refused the query: …"``).

The merge rule (what the REST API documents):

* each source is asked for its first ``offset + limit`` matches (``offset`` 0), in its own rank
  order;
* the joined list interleaves them by rank, round-robin in the configured order of the sources:
  every source's best match, then every source's second best, … (a source that has no more is
  skipped), an id seen before is dropped;
* :func:`~.model.visible` is applied again to every entry (a source's mistake cannot leak
  another VO's entry), then the page is ``[offset : offset + limit]`` of that list;
* ``total`` is the sum of the sources' totals (``None`` when a source that answered cannot
  count); facet counts are summed value by value, and the ``source`` facet counts each source's
  total.

Ranks are not comparable across sources (bm25 in one, Rucio's order in another), so
round-robin is the fair and stable choice: paging forward never reorders earlier results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..metrics import CATALOGUE_SEARCH_DURATION
from .model import Entry, Page, Query, QueryError, SourceHealth, visible
from .sources.base import SourceUnavailable

log = logging.getLogger(__name__)


def seconds(value: float) -> str:
    """``5`` → ``"5 s"``, ``0.5`` → ``"0.5 s"`` (for messages)."""
    return f"{value:g} s"


async def bounded(source: Any, call: Any) -> tuple[Any, SourceHealth]:
    """Await ``call`` (a coroutine of ``source``) for at most the source's ``timeout``.

    Returns the result (``None`` when the source failed) and the source's status; never raises
    for the source's failures, which are logged (the user sees a short message, no trace).
    """
    started, timeout = time.monotonic(), source.timeout

    def status(ok: bool, message: str = "") -> SourceHealth:
        latency = round((time.monotonic() - started) * 1000, 1)
        return SourceHealth(source.name, source.kind, ok, latency, message)

    try:
        result = await asyncio.wait_for(call, timeout)
    except TimeoutError:
        return None, status(False, f"timed out after {seconds(timeout)}")
    except QueryError as exc:
        return None, status(False, f"refused the query: {exc}")
    except SourceUnavailable as exc:
        return None, status(False, f"unavailable: {exc}")
    except Exception:
        log.exception("Catalogue source %s failed", source.name)
        return None, status(False, "unavailable: the source failed (see the service's log)")
    return result, status(True)


def interleave(pages: Sequence[Page], groups: frozenset[str]) -> list[Entry]:
    """The sources' entries by rank, round-robin, visible ones only, each id once."""
    joined: list[Entry] = []
    seen: set[str] = set()
    depth = max((len(page.entries) for page in pages), default=0)
    for rank in range(depth):
        for page in pages:
            if rank < len(page.entries):
                entry = page.entries[rank]
                if entry.id not in seen and visible(entry, groups):
                    seen.add(entry.id)
                    joined.append(entry)
    return joined


def merge_facets(answers: Sequence[tuple[str, Page]]) -> dict[str, dict[str, int]]:
    """Facet counts summed over the sources; ``source`` counts each source's total."""
    facets: dict[str, dict[str, int]] = {}
    for name, page in answers:
        for facet, counts in page.facets.items():
            if facet == "source":
                continue
            merged = facets.setdefault(facet, {})
            for value, count in counts.items():
                merged[value] = merged.get(value, 0) + int(count)
        total = page.total if page.total is not None else len(page.entries)
        if total:
            facets.setdefault("source", {})[name] = total
    return facets


async def search(sources: Sequence[Any], query: Query) -> tuple[Page, list[SourceHealth]]:
    """Ask ``sources`` (already selected) for ``query``; the merged page and each one's status."""
    wide = dataclasses.replace(query, offset=0, limit=query.offset + query.limit)
    outcomes = await asyncio.gather(*(bounded(source, source.search(wide)) for source in sources))
    answers: list[tuple[str, Page]] = []
    statuses = []
    for source, (page, status) in zip(sources, outcomes, strict=True):
        statuses.append(status)
        if status.latency_ms is not None:
            CATALOGUE_SEARCH_DURATION.labels(
                source=source.name, outcome="ok" if page is not None else "error"
            ).observe(status.latency_ms / 1000)
        if page is not None:
            answers.append((source.name, page))
    joined = interleave([page for _, page in answers], query.groups)
    totals = [page.total for _, page in answers]
    total = None if any(t is None for t in totals) else sum(t for t in totals if t is not None)
    merged = Page(
        entries=joined[query.offset : query.offset + query.limit],
        total=total,
        facets=merge_facets(answers) if query.with_facets else {},
    )
    return merged, statuses


def health_json(status: SourceHealth) -> dict[str, Any]:
    """A source's status as the REST API shows it."""
    return {
        "name": status.name,
        "kind": status.kind,
        "ok": status.ok,
        "latency_ms": status.latency_ms,
        "message": status.message,
    }
