"""What a catalogue holds and how it is asked: entries, replicas, queries, pages.

Every source answers with these types, so the service, its REST API and the lab panel know one
shape.  An entry's id is ``source:identifier`` (the source's configured name, then the source's
own identifier: a Rucio DID ``scope:name``, a TAP table ``ivoa.obscore``, a path below a
harvested root); :func:`split_id` takes it apart.

Visibility: an entry is ``public`` or private to its VO (``visibility == "vo"``), where ``vo`` is
a hub group name (``vo.radio.example``, from the users' entitlements); ``vos`` names more VOs
that may see it (software at a site several VOs may use).  :func:`visible` is the one
rule, applied by every source *and* again by the service before anything leaves it, so a
source's mistake cannot show another VO's private entry, even by id.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

#: kinds of entries
KINDS = ("dataset", "file", "collection", "table", "service", "software")
#: states of a replica (Rucio's rule states map onto them; never "available" before it is)
REPLICA_STATES = ("available", "requested", "replicating", "unavailable")
#: facets a query may filter on and a page may count
FACETS = ("source", "kind", "vo", "site", "format")
#: a source's name (the id prefix): lowercase word
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: longest free-text query accepted (characters)
MAX_QUERY_CHARS = 512
#: largest page a query may ask for
MAX_LIMIT = 200
#: farthest offset a query may ask for (deep paging is refused, not slow)
MAX_OFFSET = 10_000


class QueryError(ValueError):
    """A query or identifier the catalogue refuses (a 400 with this message)."""


@dataclass(frozen=True)
class Replica:
    """Where an entry's bytes are: one copy at one place.

    ``site`` is the site registry's name of the site holding it (``""`` when not at a known
    site), ``location`` the storage's own name (a Rucio RSE, a harvested root), ``path`` the
    path or URL there, ``state`` one of :data:`REPLICA_STATES`.
    """

    site: str
    location: str
    path: str = ""
    state: str = "available"
    size: int | None = None


@dataclass
class Entry:
    """One thing a user can find: a dataset, file, table, service or software environment."""

    id: str
    source: str
    identifier: str
    kind: str
    title: str
    description: str = ""
    vo: str = ""
    visibility: str = "public"
    format: str = ""
    size: int | None = None
    time_start: str | None = None
    time_end: str | None = None
    sites: list[str] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: how to open it, for the panel's *Insert code*: {"language": "python", "code": "..."}
    access: dict[str, str] = field(default_factory=dict)
    #: more VOs that may see a private entry besides ``vo`` (a site's software: every group
    #: allowed at the site)
    vos: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The entry as the REST API returns it."""
        return asdict(self)


@dataclass(frozen=True)
class Query:
    """A search: free text, facet filters, a time range, a size range, a page.

    ``groups`` are the asking user's hub groups (visibility); ``user`` their hub name.
    Build it with :func:`make_query`, which validates.
    """

    text: str = ""
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    vos: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    time_from: str | None = None
    time_to: str | None = None
    size_min: int | None = None
    size_max: int | None = None
    offset: int = 0
    limit: int = 20
    with_facets: bool = False
    groups: frozenset[str] = frozenset()
    user: str = ""


@dataclass
class Page:
    """One page of results from one source (or the joined answer of the service)."""

    entries: list[Entry] = field(default_factory=list)
    #: matches in all (``None``: the source cannot count cheaply)
    total: int | None = None
    #: facet → value → count, when the query asked for facets and the source can count them
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceHealth:
    """Whether a source answers, how fast, and why not."""

    name: str
    kind: str
    ok: bool
    latency_ms: float | None = None
    message: str = ""


def split_id(entry_id: str) -> tuple[str, str]:
    """``source:identifier`` → (source, identifier); :class:`QueryError` when malformed."""
    source, sep, identifier = entry_id.partition(":")
    if not sep or not SOURCE_NAME.match(source) or not identifier or len(identifier) > 1024:
        raise QueryError(f"not a catalogue entry id (source:identifier): {entry_id[:80]!r}")
    if any(ord(ch) < 32 for ch in identifier):
        raise QueryError("an entry id must not contain control characters")
    return source, identifier


def visible(entry: Entry, groups: Iterable[str]) -> bool:
    """Whether a user in ``groups`` may see ``entry``: public ones, and their own VOs' ones
    (``vo``, or one of ``vos``)."""
    if entry.visibility == "public":
        return True
    groups = set(groups)
    return (bool(entry.vo) and entry.vo in groups) or not groups.isdisjoint(entry.vos)


def _words(values: Iterable[str], name: str) -> tuple[str, ...]:
    out = []
    for value in values:
        value = str(value).strip()
        if not value:
            continue
        if len(value) > 128 or any(ord(ch) < 32 for ch in value):
            raise QueryError(f"{name} filter value is not acceptable: {value[:40]!r}")
        out.append(value)
    return tuple(dict.fromkeys(out))


def _count(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise QueryError(f"{name} must be a whole number, not {str(value)[:40]!r}") from None
    if not low <= number <= high:
        raise QueryError(f"{name} must be between {low} and {high}, not {number}")
    return number


def make_query(
    text: str = "",
    *,
    sources: Iterable[str] = (),
    kinds: Iterable[str] = (),
    vos: Iterable[str] = (),
    sites: Iterable[str] = (),
    formats: Iterable[str] = (),
    time_from: str | None = None,
    time_to: str | None = None,
    size_min: Any = None,
    size_max: Any = None,
    offset: Any = 0,
    limit: Any = 20,
    with_facets: bool = False,
    groups: Iterable[str] = (),
    user: str = "",
) -> Query:
    """A validated :class:`Query`; :class:`QueryError` with a clear message otherwise.

    The text is kept as typed (sources escape it for their own syntax: never pass it to a
    query language unescaped); it is bounded by :data:`MAX_QUERY_CHARS`.
    """
    text = str(text or "")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the search text is too long ({len(text)} characters, at most {MAX_QUERY_CHARS})"
        )
    if any(ord(ch) < 32 and ch not in "\t" for ch in text):
        raise QueryError("the search text must not contain control characters")
    kinds_t = _words(kinds, "kind")
    unknown = [k for k in kinds_t if k not in KINDS]
    if unknown:
        raise QueryError(f"unknown kind {unknown[0]!r}; kinds are {', '.join(KINDS)}")
    for name, stamp in (("time_from", time_from), ("time_to", time_to)):
        if stamp is not None and not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?", stamp
        ):
            raise QueryError(f"{name} must be an ISO 8601 date or time, not {stamp[:40]!r}")
    big = 2**62
    return Query(
        text=text.strip(),
        sources=_words(sources, "source"),
        kinds=kinds_t,
        vos=_words(vos, "vo"),
        sites=_words(sites, "site"),
        formats=_words(formats, "format"),
        time_from=time_from,
        time_to=time_to,
        size_min=None if size_min in (None, "") else _count(size_min, "size_min", 0, big),
        size_max=None if size_max in (None, "") else _count(size_max, "size_max", 0, big),
        offset=_count(offset, "offset", 0, MAX_OFFSET),
        limit=_count(limit, "limit", 1, MAX_LIMIT),
        with_facets=bool(with_facets),
        groups=frozenset(groups),
        user=user,
    )


def facet_counts(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    """Facet → value → count over ``entries`` (visible ones only: the caller filters)."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    for entry in entries:
        counts["source"][entry.source] += 1
        counts["kind"][entry.kind] += 1
        counts["format"][entry.format] += 1
        for vo in {entry.vo, *entry.vos} - {""}:
            counts["vo"][vo] += 1
        for site in entry.sites:
            counts["site"][site] += 1
    return {name: dict(counter) for name, counter in counts.items()}
