"""The IVOA TAP source (kind ``tap``): a TAP service's tables, searched and queried through pyvo.

What it reads: the service's ``TAP_SCHEMA`` (tables, columns, their descriptions, units and
UCDs), loaded when the source starts and again every ``metadata_ttl`` seconds.  Entries:

* ``<name>:@service`` (kind ``service``) — the service itself;
* ``<name>:<schema.table>`` (kind ``table``) — each table outside ``TAP_SCHEMA``; its view
  (:meth:`TapSource.get`) lists the columns and an example query, and its *Insert code* is a
  pyvo cell;
* with ``registry_url`` (an IVOA registry's RegTAP endpoint), ``<name>:<ivoid>`` (kind
  ``service``) — the TAP services the registry lists for the search's words (pyvo's
  ``regsearch`` query, :func:`.tapclient.registry_search`).

Search is over those descriptions (every word must match a table's name, description or
columns).  :meth:`TapSource.run_query` runs the panel's queries: the cone/time/band form or raw
ADQL, both through :mod:`.adql` (validated numbers and TAP_SCHEMA's identifiers; the raw
query's guard), bounded by MAXREC (``maxrec``) and a request timeout (``query_timeout``); the
server's own execution limit stays behind them.

Configuration (one source per TAP service)::

    c.CatalogueApp.sources = [{"kind": "tap", "name": "radio-tap", "label": "Radio archive",
        "url": "https://tap.example.org/tap", "vo": "vo.radio.example", "visibility": "vo"}]
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from traitlets import Enum, Float, Int, Unicode

from ..model import Entry, Page, Query, QueryError, SourceHealth, facet_counts, visible
from .adql import (
    ColumnInfo,
    TableInfo,
    check_adql,
    form_adql,
    plain_identifier,
    quote_identifier,
)
from .base import ActionRefused, CatalogueSource, SourceUnavailable
from .tapclient import cell, datatype, pyvo_code, registry_search, run_sync

#: the identifier of the service's own entry
SERVICE_ENTRY = "@service"
#: seconds before a failed refresh of TAP_SCHEMA is tried again
RETRY_SECONDS = 60.0


class TapSource(CatalogueSource):
    """A TAP service's tables (see the module's documentation)."""

    kind = "tap"

    url = Unicode(config=True, help="The TAP service's URL (the base of /sync and /tables).")
    vo = Unicode("", config=True, help="The VO (hub group) the service belongs to, if any.")
    visibility = Enum(
        ["public", "vo"],
        "public",
        config=True,
        help="'public': every user sees the tables; 'vo': only members of `vo`.",
    )
    maxrec = Int(1000, config=True, help="The most rows one query returns (TAP MAXREC).")
    query_timeout = Float(
        30.0, config=True, help="Seconds a query (and a metadata request) may take."
    )
    max_adql_chars = Int(4000, config=True, help="The longest raw ADQL query accepted.")
    metadata_ttl = Float(
        300.0, config=True, help="Seconds before the service's TAP_SCHEMA is read again."
    )
    registry_url = Unicode(
        "",
        config=True,
        help="""A RegTAP endpoint (an IVOA registry's TAP service) whose TAP services a search
        lists too, as entries of kind ``service`` (id ``<name>:<ivoid>``).  Empty: none.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tables: dict[str, TableInfo] = {}
        self._loaded = -math.inf
        self._lock = asyncio.Lock()

    # -- the service -----------------------------------------------------------------------

    def _run(self, adql: str, maxrec: int, timeout: float | None = None) -> Any:
        """Run ``adql`` on the service within ``timeout`` (default ``query_timeout``)."""
        return run_sync(self.url, adql, maxrec, timeout or self.query_timeout)

    def _load_metadata(self) -> None:
        tables = self._run(
            "SELECT table_name, description FROM TAP_SCHEMA.tables", self.maxrec * 10
        ).to_table()
        columns = self._run(
            "SELECT table_name, column_name, datatype, unit, ucd, description "
            "FROM TAP_SCHEMA.columns",
            100_000,
        ).to_table()
        loaded: dict[str, TableInfo] = {}
        for row in tables:
            name = str(cell(row["table_name"]))
            if name.lower().startswith("tap_schema."):
                continue
            loaded[name.lower()] = TableInfo(name, str(cell(row["description"]) or "").strip())
        for row in columns:
            table = loaded.get(str(cell(row["table_name"])).lower())
            if table is not None:
                table.columns.append(
                    ColumnInfo(
                        *(str(cell(row[key]) or "").strip() for key in
                          ("column_name", "datatype", "unit", "ucd", "description"))
                    )
                )  # fmt: skip
        self._tables = loaded

    async def _metadata(self) -> dict[str, TableInfo]:
        """The service's tables, read again when older than ``metadata_ttl``.

        When the service does not answer a refresh, what was read before is kept (tables
        rarely change; searches go on) and the next refresh is tried a minute later.
        """
        async with self._lock:
            if time.monotonic() - self._loaded > self.metadata_ttl:
                try:
                    await asyncio.to_thread(self._load_metadata)
                except (SourceUnavailable, QueryError) as error:
                    if not self._tables:
                        raise
                    self.log.warning("TAP source %s: keeping its tables (%s)", self.name, error)
                    self._loaded = time.monotonic() - self.metadata_ttl + RETRY_SECONDS
                else:
                    self._loaded = time.monotonic()
        return self._tables

    async def start(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the TAP source {self.name!r} needs an http(s) url")
        try:
            await self._metadata()
        except (SourceUnavailable, QueryError) as error:
            self.log.warning("TAP source %s: %s (trying again on use)", self.name, error)

    async def health(self) -> SourceHealth:
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._run, "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables", 1)
        except (SourceUnavailable, QueryError) as error:
            return SourceHealth(self.name, self.kind, False, message=str(error))
        latency = (time.monotonic() - started) * 1000
        return SourceHealth(self.name, self.kind, True, latency_ms=round(latency, 1))

    # -- entries ---------------------------------------------------------------------------

    def _entry(self, identifier: str, kind: str, title: str, description: str) -> Entry:
        return Entry(
            id=f"{self.name}:{identifier}",
            source=self.name,
            identifier=identifier,
            kind=kind,
            title=title,
            description=description,
            vo=self.vo,
            visibility=self.visibility,
            format="votable",
            # the panel's query form bounds its rows by maxrec, and its pyvo cell calls url
            metadata={"service": self.url, "maxrec": self.maxrec},
        )

    def _example(self, table: TableInfo) -> str:
        return f"SELECT TOP 100 * FROM {quote_identifier(table.name)}"  # noqa: S608 (TAP_SCHEMA's)

    def _table_entry(self, table: TableInfo, full: bool = False) -> Entry:
        entry = self._entry(table.name, "table", table.name, table.description)
        entry.metadata["columns"] = (
            [vars(column) for column in table.columns]
            if full
            else [column.name for column in table.columns]
        )
        entry.metadata["form_fields"] = sorted(table.form_columns())
        entry.metadata["example_query"] = self._example(table)
        entry.access = {
            "language": "python",
            "code": pyvo_code(self.url, self._example(table), self.maxrec),
        }
        return entry

    def _service_entry(self, tables: dict[str, TableInfo]) -> Entry:
        title = self.label or self.name
        entry = self._entry(
            SERVICE_ENTRY,
            "service",
            title,
            f"IVOA TAP service at {self.url} ({len(tables)} tables)",
        )
        entry.metadata["tables"] = sorted(table.name for table in tables.values())
        entry.access = {
            "language": "python",
            "code": pyvo_code(self.url, "SELECT TOP 100 * FROM TAP_SCHEMA.tables", self.maxrec),
        }
        return entry

    async def _registry_entries(self, words: list[str], limit: int, ivoid: str = "") -> list[Entry]:
        """TAP services the registry (``registry_url``) lists for ``words`` or ``ivoid``; none
        when no registry is configured or it does not answer (the tables are still found)."""
        if not self.registry_url:
            return []
        try:
            found = await asyncio.to_thread(
                registry_search, self.registry_url, words, self.query_timeout, limit, ivoid
            )
        except (SourceUnavailable, QueryError) as error:
            self.log.warning("TAP source %s: registry: %s", self.name, error)
            return []
        entries = []
        for service in found:
            entry = self._entry(
                service["ivoid"], "service", service["title"], service["description"]
            )
            entry.metadata.update(
                service=service["access_url"],
                registry=self.registry_url,
                waveband=service["waveband"],
            )
            adql = "SELECT TOP 100 * FROM TAP_SCHEMA.tables"
            entry.access = {
                "language": "python",
                "code": pyvo_code(service["access_url"], adql, self.maxrec),
            }
            entries.append(entry)
        return entries

    @staticmethod
    def _matches(entry: Entry, query: Query, words: list[str]) -> int:
        """0 when ``entry`` does not match, else a score (title hits count most)."""
        if query.kinds and entry.kind not in query.kinds:
            return 0
        if query.vos and entry.vo not in query.vos:
            return 0
        if query.formats and entry.format not in query.formats:
            return 0
        # tables have no site, time range or size: a filter on them excludes them
        if query.sites or query.time_from or query.time_to:
            return 0
        if query.size_min is not None or query.size_max is not None:
            return 0
        title = entry.title.lower()
        body = " ".join([entry.description, *map(str, entry.metadata.get("columns", ()))]).lower()
        score = 1
        for word in words:
            if word in title:
                score += 3
            elif word in body:
                score += 1
            else:
                return 0
        return score

    async def search(self, query: Query) -> Page:
        if query.sources and self.name not in query.sources:
            return Page(total=0)
        if not visible(self._entry("x", "table", "", ""), query.groups):
            return Page(total=0)
        tables = await self._metadata()
        candidates = [self._service_entry(tables)]
        for table in tables.values():
            entry = self._table_entry(table)
            # column descriptions are searched too
            entry.metadata["columns"] = [
                f"{column.name} {column.description} {column.ucd}" for column in table.columns
            ]
            candidates.append(entry)
        words = query.text.lower().split()
        scored = [(self._matches(entry, query, words), entry) for entry in candidates]
        # the registry matched its services' words its own way (titles, descriptions,
        # subjects): here only the filters apply
        scored += [
            (self._matches(entry, query, []), entry)
            for entry in await self._registry_entries(words, query.offset + query.limit)
        ]
        found = [entry for score, entry in sorted(scored, key=lambda pair: -pair[0]) if score]
        page = Page(total=len(found))
        if query.with_facets:
            page.facets = facet_counts(found)
        for entry in found[query.offset : query.offset + query.limit]:
            if entry.kind == "table":
                entry.metadata["columns"] = [
                    c.name for c in tables[entry.identifier.lower()].columns
                ]
            page.entries.append(entry)
        return page

    async def get(self, identifier: str, query: Query) -> Entry | None:
        if not visible(self._entry("x", "table", "", ""), query.groups):
            return None
        tables = await self._metadata()
        if identifier == SERVICE_ENTRY:
            return self._service_entry(tables)
        if identifier.startswith("ivo://"):
            found = await self._registry_entries([], 1, ivoid=identifier)
            return found[0] if found else None
        table = tables.get(identifier.lower())
        return None if table is None else self._table_entry(table, full=True)

    # -- queries ---------------------------------------------------------------------------

    async def run_query(self, request: dict[str, Any], query: Query) -> dict[str, Any]:
        """Run the form or raw ADQL (see the module's documentation); answers ``{columns,
        rows, truncated, message}`` with at most ``maxrec`` (or the request's smaller
        ``maxrec``) rows."""
        if not visible(self._entry("x", "table", "", ""), query.groups):
            raise ActionRefused(f"{self.label or self.name} is private to {self.vo}")
        if not isinstance(request, dict):
            raise QueryError("a query is a JSON object: {adql} or {table, ra, dec, ...}")
        limit = request.get("maxrec", self.maxrec)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.maxrec:
            raise QueryError(f"maxrec must be a whole number between 1 and {self.maxrec}")
        if "adql" in request:
            if "table" in request:
                raise QueryError("give either adql or the form's table, not both")
            adql = check_adql(request["adql"], self.max_adql_chars)
        elif "table" in request:
            name = plain_identifier(request["table"])
            table = (await self._metadata()).get(name.lower())
            if table is None:
                raise QueryError(f"{self.label or self.name} has no table {name!r}")
            adql = form_adql(table, request, limit + 1)
        else:
            raise QueryError("a query needs adql or a table")
        # one row more than asked: a full answer and a cut one are then told apart
        result = await asyncio.to_thread(self._run, adql, limit + 1)
        table_out = result.to_table()
        names = list(table_out.colnames)
        rows = [[cell(row[name]) for name in names] for row in table_out[: limit + 1]]
        truncated = len(rows) > limit or getattr(result, "query_status", "") == "OVERFLOW"
        rows = rows[:limit]
        columns = [
            {
                "name": name,
                "unit": str(table_out[name].unit or ""),
                "datatype": datatype(table_out[name]),
            }
            for name in names
        ]
        message = f"{len(rows)} rows" + (
            f" (cut at {limit}: narrow the query)" if truncated else ""
        )
        return {
            "columns": columns,
            "rows": rows,
            "truncated": truncated,
            "message": message,
            "adql": adql,
        }
