"""The catalogue's fan-out: sources asked at once, each bounded, merged by rank.

The sources here are small in-test :class:`CatalogueSource` subclasses (the sources' boundary):
one answers at once, one sleeps past its timeout, one fails, one leaks a private entry.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from continuum_hub.catalogue.fanout import interleave, search
from continuum_hub.catalogue.model import Entry, Page, Query, make_query
from continuum_hub.catalogue.sources.base import CatalogueSource, SourceUnavailable

pytestmark = pytest.mark.catalogue

HEP, RADIO = "vo.hep.example", "vo.radio.example"


def entry(source: str, identifier: str, **fields: Any) -> Entry:
    return Entry(f"{source}:{identifier}", source, identifier, "dataset", identifier, **fields)


class ListSource(CatalogueSource):
    """Answers its entries in order (``asked`` keeps the queries), after ``pause`` seconds."""

    kind = "list"

    def __init__(self, name: str, entries: list[Entry], pause: float = 0.0, **kw: Any) -> None:
        super().__init__(name=name, **kw)
        self.listed, self.pause, self.asked = entries, pause, []

    async def search(self, query: Query) -> Page:
        self.asked.append(query)
        await asyncio.sleep(self.pause)
        found = self.listed[query.offset : query.offset + query.limit]
        return Page(found, total=len(self.listed), facets={"kind": {"dataset": len(found)}})


class FailingSource(ListSource):
    async def search(self, query: Query) -> Page:
        raise SourceUnavailable("connection refused")


class BrokenSource(ListSource):
    async def search(self, query: Query) -> Page:
        raise KeyError("a bug with a secret-looking trace")


async def test_a_slow_and_a_failing_source_do_not_block_the_others() -> None:
    fast = ListSource("fast", [entry("fast", f"f{i}") for i in range(3)])
    slow = ListSource("slow", [entry("slow", "s0")], pause=30, timeout=0.5)
    down = FailingSource("down", [])
    broken = BrokenSource("broken", [])
    started = time.monotonic()
    page, statuses = await search([fast, slow, down, broken], make_query("x", with_facets=True))
    assert time.monotonic() - started < 2.0  # the slow one's timeout, not its 30 s
    assert [e.id for e in page.entries] == ["fast:f0", "fast:f1", "fast:f2"]
    by_name = {s.name: s for s in statuses}
    assert by_name["fast"].ok and by_name["fast"].latency_ms is not None
    assert by_name["slow"].message == "timed out after 0.5 s" and not by_name["slow"].ok
    assert by_name["down"].message == "unavailable: connection refused"
    assert by_name["broken"].message == "unavailable: the source failed (see the service's log)"
    assert page.total == 3 and page.facets == {"kind": {"dataset": 3}, "source": {"fast": 3}}


async def test_merge_interleaves_by_rank_and_pages_over_the_merge() -> None:
    a = ListSource("a", [entry("a", f"a{i}") for i in range(5)])
    b = ListSource("b", [entry("b", f"b{i}") for i in range(2)])
    page, _ = await search([a, b], make_query(offset=2, limit=3))
    # merge: a0 b0 a1 b1 a2 a3 a4 → [2:5]
    assert [e.identifier for e in page.entries] == ["a1", "b1", "a2"]
    # each source was asked for the first offset + limit of its own matches
    assert (a.asked[0].offset, a.asked[0].limit) == (0, 5)
    assert page.total == 7 and page.facets == {}  # facets only when asked


async def test_visibility_is_applied_again_to_what_a_source_returns() -> None:
    private = entry("leaky", "secret", vo=RADIO, visibility="vo")
    leaky = ListSource("leaky", [private, entry("leaky", "open")])
    bob = make_query(groups=[HEP])
    page, _ = await search([leaky], bob)
    assert [e.identifier for e in page.entries] == ["open"]
    alice = make_query(groups=[HEP, RADIO])
    page, _ = await search([leaky], alice)
    assert [e.identifier for e in page.entries] == ["secret", "open"]


def test_interleave_drops_repeated_ids() -> None:
    same = entry("a", "x")
    pages = [Page([same, entry("a", "y")]), Page([same])]
    assert [e.identifier for e in interleave(pages, frozenset())] == ["x", "y"]
