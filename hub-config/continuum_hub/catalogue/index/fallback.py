"""Search through the store alone, while the full-text index is missing, corrupt or rebuilt.

The same query as :mod:`.fulltext` answers — words (the last also a prefix), facet filters,
time and size ranges, visibility — through the store's ``fts`` table: FTS5 on SQLite, a
weighted ``tsvector`` on PostgreSQL (:mod:`.schema`).  Ranking every match (FTS5's bm25,
PostgreSQL's ts_rank) is hundreds of milliseconds for a common word at a million entries, so
this path takes only the **newest** ``cap`` matches that pass the filters, ranks those, and
counts totals and facets over them.  On SQLite the last word is a prefix through FTS5's prefix
indexes (up to 4 letters); a longer last word matches its completions only when the whole
word finds less than the page asked for.  On PostgreSQL the last word is a ``:*`` prefix of
the GIN-indexed ``tsvector``.  The answer is bounded and correct for what it shows, but a
common word's total is a lower bound then: the source's health says it is degraded.

Visibility is part of the SQL, as in the index: rows of other VOs' private entries are never
read into the candidate set.
"""

from __future__ import annotations

import re
from collections import Counter

from ..model import Page, Query
from .store import CatalogueStore
from .terms import MIN_PREFIX, time_bounds, words

#: matches ranked per search (newest first); a bound on the work of one degraded search
DEFAULT_CAP = 1000
#: longest prefix the store's FTS5 table indexes (``prefix='2 3 4'``)
INDEXED_PREFIX = 4


def match_expression(text: str, *, prefix: bool = True) -> str | None:
    """An FTS5 MATCH string for ``text``: each word a quoted literal, the last also a prefix.

    Words are letters and digits only (:func:`.terms.words`), and are quoted besides, so no FTS5
    operator, column filter or quote in the user's text reaches the query parser.
    """
    terms = words(text)
    if not terms:
        return None
    parts = ['"' + term.replace('"', '""') + '"' for term in terms]
    if prefix and len(terms[-1]) >= MIN_PREFIX:
        parts[-1] += "*"
    return " ".join(parts)


def ts_query(text: str) -> str | None:
    """A PostgreSQL ``to_tsquery`` string for ``text``: the words ANDed, the last a prefix.

    Words are letters and digits only (:func:`.terms.words`), quoted besides, so no tsquery
    operator in the user's text reaches the parser.
    """
    terms = words(text)
    if not terms:
        return None
    parts = ["'" + term.replace("'", "''") + "'" for term in terms]
    if len(terms[-1]) >= MIN_PREFIX:
        parts[-1] += ":*"
    return " & ".join(parts)


def filters(query: Query, dialect: str = "sqlite") -> tuple[str, list[object]]:
    """The SQL conditions (over ``entries e``) and parameters of a query's filters."""
    groups = sorted(g for g in query.groups if g)
    conditions = [
        "(e.visibility = 'public' OR (e.vo != '' AND e.vo IN ({})))".format(
            ",".join("?" * len(groups)) or "NULL"
        )
    ]
    params: list[object] = list(groups)
    for column, values in (
        ("source", query.sources),
        ("kind", query.kinds),
        ("vo", query.vos),
        ("format", query.formats),
    ):
        if values:
            conditions.append(f"e.{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if query.sites:
        contains = "instr(e.sites, ?) > 0" if dialect == "sqlite" else "strpos(e.sites, ?) > 0"
        conditions.append("(" + " OR ".join(contains for _ in query.sites) + ")")
        params.extend(f"|{site}|" for site in query.sites)
    start, end = time_bounds(query)
    if start is not None:
        conditions.append("catalogue_epoch(coalesce(e.time_end, e.time_start), 1) >= ?")
        params.append(start)
    if end is not None:
        conditions.append("catalogue_epoch(coalesce(e.time_start, e.time_end), 0) <= ?")
        params.append(end)
    if query.size_min is not None:
        conditions.append("e.size >= ?")
        params.append(query.size_min)
    if query.size_max is not None:
        conditions.append("e.size <= ?")
        params.append(query.size_max)
    return " AND ".join(conditions), params


class FallbackSearch:
    """Bounded search through the store (see the module docstring).

    Parameters
    ----------
    store
        The records to search.
    cap
        How many of the newest matches one search ranks and counts.
    """

    def __init__(self, store: CatalogueStore, cap: int = DEFAULT_CAP) -> None:
        self.store = store
        self.cap = cap

    def candidates(self, query: Query) -> list[tuple]:
        """(rowid, score, source, kind, vo, format, sites) of the newest ``cap`` matches."""
        where, params = filters(query, self.store.dialect)
        columns = "e.source, e.kind, e.vo, e.format, e.sites"
        # only fixed SQL and "?" marks are spliced below; every value is a parameter
        if not words(query.text):
            sql = (
                f"SELECT e.rowid, 0.0, {columns} FROM {{entries}} e WHERE {where} "  # noqa: S608
                "ORDER BY e.rowid DESC LIMIT ?"
            )
            return self.store.query(sql, [*params, self.cap])
        if self.store.dialect != "sqlite":
            # title words weigh more (weight A), as in the index; lower scores rank first
            sql = (
                f"SELECT e.rowid, -ts_rank(f.doc, q.query), {columns} "  # noqa: S608
                "FROM {fts} f JOIN {entries} e ON e.rowid = f.rowid, "
                "to_tsquery('simple', ?) AS q(query) "
                f"WHERE f.doc @@ q.query AND {where} ORDER BY f.rowid DESC LIMIT ?"
            )
            return self.store.query(sql, [ts_query(query.text), *params, self.cap])
        # title words weigh twice (as in the index); bm25 is lower for better matches
        sql = (
            f"SELECT e.rowid, bm25(fts, 2.0, 1.0), {columns} FROM {{fts}} fts "  # noqa: S608
            f"JOIN {{entries}} e ON e.rowid = fts.rowid WHERE fts MATCH ? AND {where} "
            "ORDER BY fts.rowid DESC LIMIT ?"
        )
        last = words(query.text)[-1]
        if len(last) <= INDEXED_PREFIX:
            return self.store.query(sql, [match_expression(query.text), *params, self.cap])
        # FTS5 merges the doclists of every completion of an unindexed prefix, which is slow
        # for a common word: the whole word first, and completions only when it finds less
        # than the page asked for, through its indexed 4-letter prefix, checked here
        exact = self.store.query(
            sql, [match_expression(query.text, prefix=False), *params, self.cap]
        )
        if len(exact) >= query.offset + query.limit:
            return exact
        wider = match_expression(" ".join([*words(query.text)[:-1], last[:INDEXED_PREFIX]]))
        sql = sql.replace("e.sites FROM", "e.sites, fts.title, fts.body FROM")
        starts = re.compile(r"(?:^|[\W_])" + re.escape(last))
        return [
            row[:7]
            for row in self.store.query(sql, [wider, *params, self.cap])
            if starts.search(row[7].lower()) or starts.search(row[8].lower())
        ]

    def page(self, query: Query) -> Page:
        """A page of ``query``'s results, its (bounded) total and facet counts."""
        rows = self.candidates(query)
        rows.sort(key=lambda row: (row[1], -row[0]))
        chosen = [row[0] for row in rows[query.offset : query.offset + query.limit]]
        facets: dict[str, dict[str, int]] = {}
        if query.with_facets:
            counters = {name: Counter() for name in ("source", "kind", "vo", "format", "site")}
            for _, _, source, kind, vo, format_, sites in rows:
                for name, value in (
                    ("source", source),
                    ("kind", kind),
                    ("vo", vo),
                    ("format", format_),
                ):
                    if value:
                        counters[name][value] += 1
                counters["site"].update(s for s in sites.split("|") if s)
            facets = {name: dict(counter.most_common(50)) for name, counter in counters.items()}
        return Page(entries=self.store.by_rowids(chosen), total=len(rows), facets=facets)
