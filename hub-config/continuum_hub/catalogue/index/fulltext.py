"""The built-in catalogue's full-text index: tantivy, rebuilt from the store (its database).

Chosen by measurement (``bench/catalogue_search.py``; ``LIBRARIES.md``): at a million entries
SQLite's FTS5 ranks every match (p95 ≈ 260 ms) where tantivy answers ranked, filtered and
faceted queries in tens of milliseconds.  The index holds no truth of its own: each document
is keyed by the entry's store ``rowid``, and :meth:`FullTextIndex.rebuild` makes it again from
the store.  The index remembers the store's newest ``updated`` stamp it holds (in the file
``synced``); :meth:`~FullTextIndex.sync` — after every write of this process, and before every
search — indexes the rows written since, by this process or another (the harvest CLI), as one
commit, then reloads the readers (more than :data:`SYNC_LIMIT` rows: rebuilt instead).
Deletions come from this process's store; one made by another process leaves a hit the store
no longer has (it is skipped) until the next start, when the count differs and the index is
rebuilt.

Queries are built from :class:`~tantivy.Query` objects, never parsed from user text (see
:mod:`.terms`).  Visibility is a clause of the query itself (``public`` or one of the user's
VOs), so hits, totals and facet counts never include another VO's private entries.

While the index is missing, corrupt, out of step with the store or being rebuilt,
:attr:`FullTextIndex.ready` is false and :meth:`~FullTextIndex.search` raises
:class:`IndexUnavailable`; the source then searches through :mod:`.fallback`.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import tantivy

from ..model import FACETS, Page, Query
from .store import CatalogueStore
from .terms import MIN_PREFIX, epoch, time_bounds, visibility_key, visibility_keys, words

log = logging.getLogger(__name__)

Occur = tantivy.Occur
TQuery = tantivy.Query
#: facet name (model) → index field
FACET_FIELDS = {"source": "source", "kind": "kind", "vo": "vo", "site": "site", "format": "format"}
#: how many values of each facet are counted
FACET_SIZE = 50
#: a title word weighs this much more than the same word in the description or metadata
TITLE_BOOST = 2.0
#: more rows than this written elsewhere are not synced before a search but rebuilt (in the
#: background, the fallback answering meanwhile): a search must not wait for a bulk harvest
SYNC_LIMIT = 20_000


class IndexUnavailable(RuntimeError):
    """The full-text index cannot answer now (the reason is the message)."""


def build_schema() -> tantivy.Schema:
    """The index's fields: ranked text, raw facet fields, numeric filters and the row key."""
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("rid", stored=True, indexed=True, fast=True)
    builder.add_text_field("text", index_option="freq")
    builder.add_text_field("title", index_option="freq")
    for field in (*FACET_FIELDS.values(), "vis"):
        builder.add_text_field(field, tokenizer_name="raw", fast=True, index_option="basic")
    for field in ("size", "tstart", "tend"):
        builder.add_integer_field(field, indexed=True, fast=True)
    return builder.build()


def make_document(doc: dict[str, Any]) -> tantivy.Document:
    """A tantivy document from one of :meth:`CatalogueStore.documents`'s records."""
    out = tantivy.Document()
    out.add_integer("rid", doc["rowid"])
    out.add_text("text", doc["text"])
    out.add_text("title", doc["title"])
    for field in ("source", "kind", "vo", "format"):
        if doc[field]:
            out.add_text(field, doc[field])
    for site in doc["sites"]:
        out.add_text("site", site)
    out.add_text("vis", visibility_key(doc["visibility"], doc["vo"]))
    if doc["size"] is not None:
        out.add_integer("size", int(doc["size"]))
    start = epoch(doc["time_start"])
    end = epoch(doc["time_end"], end=True)
    if start is not None or end is not None:
        out.add_integer("tstart", start if start is not None else end)
        out.add_integer("tend", end if end is not None else start)
    return out


class FullTextIndex:
    """A tantivy index over a :class:`CatalogueStore`, kept current by the store's writes.

    Parameters
    ----------
    store
        The records the index is built from (it registers itself as their listener).
    path
        The index folder (created by :meth:`rebuild`).
    heap_bytes
        The writer's memory budget (a larger one makes fewer, bigger segments).
    """

    def __init__(self, store: CatalogueStore, path: str | Path, heap_bytes: int = 256_000_000):
        self.store = store
        self.path = Path(path)
        self.heap_bytes = heap_bytes
        self.schema = build_schema()
        self.index: tantivy.Index | None = None
        self.writer: Any = None
        #: why the index cannot answer ("" when it can)
        self.reason = "the full-text index has not been opened"
        self.rebuilding = False
        self.closed = False
        #: the store's ``updated`` stamp up to which the index holds every write
        self.synced = 0.0
        self._lock = threading.RLock()
        self._deleted: set[int] = set()
        store.listeners.append(self._on_write)

    @property
    def ready(self) -> bool:
        """Whether searches can go through the index now (its folder still exists)."""
        return not self.reason and (self.path / "meta.json").exists()

    def open(self) -> bool:
        """Open the index on disk and catch up with the store; false (with :attr:`reason`) when
        it is missing, corrupt or out of step (then :meth:`rebuild`)."""
        with self._lock:
            return self._load() and self._check()

    def _load(self) -> bool:
        self._close()
        if not (self.path / "meta.json").exists():
            self.reason = "the full-text index is missing"
            return False
        try:
            synced = float((self.path / "synced").read_text())
            index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
            index.reload()
            writer = index.writer(heap_size=self.heap_bytes, num_threads=1)
        except (ValueError, OSError) as exc:
            self.reason = f"the full-text index cannot be read ({exc})"
            return False
        self.index, self.writer, self.synced, self.reason = index, writer, synced, ""
        self.sync()
        return True

    def _check(self) -> bool:
        """Whether the index holds as many entries as the store (else it is out of step)."""
        assert self.index is not None
        docs, count = self.index.searcher().num_docs, self.store.count()
        if docs != count:
            self._close()
            self.reason = f"the full-text index has {docs} entries, the store {count}"
        return not self.reason

    def _close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.wait_merging_threads()
            except (ValueError, RuntimeError):
                pass
        self.writer = self.index = None

    def close(self) -> None:
        """Let go of the index (searches fail over to the fallback)."""
        with self._lock:
            self._close()
            self.closed = True
            self.reason = "the full-text index is closed"
            if self._on_write in self.store.listeners:
                self.store.listeners.remove(self._on_write)

    # -- keeping current ----------------------------------------------------------------------

    def _on_write(self, changed: list[int], deleted: list[int]) -> None:
        with self._lock:
            if self.rebuilding or not self.ready:
                # the rebuild's snapshot may still hold them; changes come with their stamps
                self._deleted.update(deleted)
                return
            if deleted:
                self._apply([], deleted)
            self.sync()

    def sync(self) -> int:
        """Index what was written to the store since :attr:`synced`; returns how many rows."""
        with self._lock:
            if self.rebuilding or not self.ready:
                return 0
            latest = self.store.last_update()
            if latest <= self.synced:
                return 0
            rowids = self.store.changed_since(self.synced)
            if len(rowids) > SYNC_LIMIT:
                self.reason = f"{len(rowids)} entries changed since the full-text index was built"
                return 0
            if self._apply(rowids, []):
                self._stamp(latest)
            return len(rowids)

    def _stamp(self, synced: float) -> None:
        self.synced = synced
        try:
            (self.path / "synced").write_text(repr(synced))
        except OSError as exc:  # the folder went away: the next open rebuilds
            self.reason = f"the full-text index cannot be written ({exc})"

    def _apply(self, changed: list[int], deleted: list[int]) -> bool:
        """Re-index ``changed`` rows from the store, drop ``deleted`` ones, commit once."""
        try:
            for rowid in (*changed, *deleted):
                self.writer.delete_documents_by_term("rid", rowid)
            for doc in self.store.documents(changed):
                self.writer.add_document(make_document(doc))
            self.writer.commit()
            self.index.reload()
        except (ValueError, OSError, RuntimeError) as exc:
            log.warning("full-text index update failed, rebuild needed: %s", exc)
            self.reason = f"the full-text index could not be updated ({exc})"
            return False
        return True

    def rebuild(self) -> int:
        """Build the index again from the store into a new folder, then swap it in.

        Searches use the old index (or the fallback) meanwhile; writes made during the build
        are applied after the swap.  Returns the number of documents indexed.
        """
        with self._lock:
            if self.rebuilding:
                raise IndexUnavailable("the full-text index is already being rebuilt")
            self.rebuilding = True
            self._deleted.clear()
        fresh = self.path.with_name(self.path.name + ".new")
        try:
            shutil.rmtree(fresh, ignore_errors=True)
            fresh.mkdir(parents=True)
            index = tantivy.Index(self.schema, path=str(fresh), reuse=False)
            writer = index.writer(heap_size=self.heap_bytes, num_threads=1)
            # read before the scan's snapshot: rows written later are > it and synced after
            synced = self.store.last_update()
            count = 0
            for doc in self.store.documents():
                writer.add_document(make_document(doc))
                count += 1
            writer.commit()
            writer.wait_merging_threads()
            del writer, index
            (fresh / "synced").write_text(repr(synced))
            with self._lock:
                self._close()
                old = self.path.with_name(self.path.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                if self.path.exists():
                    self.path.rename(old)
                fresh.rename(self.path)
                shutil.rmtree(old, ignore_errors=True)
                self.rebuilding = False
                # a rebuild that outlived close() (its thread cannot be cancelled) leaves it so
                if not self.closed and self._load():
                    if self._deleted:
                        self._apply([], sorted(self._deleted))
                    self._check()
                self._deleted.clear()
            return count
        finally:
            with self._lock:
                self.rebuilding = False
            shutil.rmtree(fresh, ignore_errors=True)

    # -- searching ----------------------------------------------------------------------------

    def build_query(self, query: Query) -> tuple[Any, bool]:
        """The tantivy query for ``query`` and whether it ranks (it has words)."""
        schema = self.schema
        clauses: list[tuple[Any, Any]] = []
        terms = words(query.text)
        for position, term in enumerate(terms):
            options = [
                (Occur.Should, TQuery.term_query(schema, "text", term)),
                (
                    Occur.Should,
                    TQuery.boost_query(TQuery.term_query(schema, "title", term), TITLE_BOOST),
                ),
            ]
            if position == len(terms) - 1 and len(term) >= MIN_PREFIX:
                # the word being typed: also every longer word it begins (literal, escaped)
                prefix = TQuery.regex_query(schema, "text", _regex_escape(term) + ".+")
                options.append((Occur.Should, TQuery.const_score_query(prefix, 0.5)))
            clauses.append((Occur.Must, TQuery.boolean_query(options)))
        for name, values in (
            ("source", query.sources),
            ("kind", query.kinds),
            ("vo", query.vos),
            ("site", query.sites),
            ("format", query.formats),
        ):
            if values:
                clauses.append((Occur.Must, TQuery.term_set_query(schema, name, list(values))))
        visibility = TQuery.term_set_query(schema, "vis", visibility_keys(query.groups))
        clauses.append((Occur.Must, visibility))
        start, end = time_bounds(query)
        integer = tantivy.FieldType.Integer
        if start is not None:
            clauses.append((Occur.Must, TQuery.range_query(schema, "tend", integer, start, None)))
        if end is not None:
            clauses.append((Occur.Must, TQuery.range_query(schema, "tstart", integer, None, end)))
        if query.size_min is not None or query.size_max is not None:
            clauses.append(
                (
                    Occur.Must,
                    TQuery.range_query(schema, "size", integer, query.size_min, query.size_max),
                )
            )
        return TQuery.boolean_query(clauses), bool(terms)

    def search(self, query: Query) -> tuple[list[int], int, dict[str, dict[str, int]]]:
        """Row ids of one page of hits (best first), the total, and facet counts if asked."""
        self.sync()  # writes of other processes (the harvest CLI)
        if not self.ready or self.index is None:
            raise IndexUnavailable(self.reason or "the full-text index is missing")
        index = self.index
        tquery, ranked = self.build_query(query)
        try:
            searcher = index.searcher()
            result = searcher.search(
                tquery,
                query.limit,
                count=True,
                offset=query.offset,
                **({} if ranked else {"order_by_field": "rid"}),
            )
            rowids = [searcher.doc(address)["rid"][0] for _, address in result.hits]
            facets = self._facets(searcher, tquery) if query.with_facets else {}
        except (ValueError, OSError) as exc:
            # e.g. an index written by another version: answer from the database, rebuild
            self.reason = f"the full-text index failed ({exc})"
            raise IndexUnavailable(self.reason) from exc
        return rowids, int(result.count), facets

    @staticmethod
    def _facets(searcher: Any, tquery: Any) -> dict[str, dict[str, int]]:
        spec = {
            name: {"terms": {"field": field, "size": FACET_SIZE}}
            for name, field in FACET_FIELDS.items()
            if name in FACETS
        }
        answer = searcher.aggregate(tquery, spec)
        return {
            name: {b["key"]: int(b["doc_count"]) for b in answer.get(name, {}).get("buckets", [])}
            for name in spec
        }

    def page(self, query: Query) -> Page:
        """A :class:`Page` of entries for ``query`` (entries read back from the store)."""
        rowids, total, facets = self.search(query)
        return Page(entries=self.store.by_rowids(rowids), total=total, facets=facets)


def _regex_escape(term: str) -> str:
    """``term`` as a literal in tantivy's regex syntax (terms are letters and digits already,
    but escape anyway: the escaping must not depend on the tokenizer staying so)."""
    return "".join(ch if ch.isalnum() else "\\" + ch for ch in term)
