"""The built-in catalogue: an embedded index of datasets, with no external service.

Records live in a database (:class:`~continuum_hub.catalogue.index.store.CatalogueStore`, the
truth): ``db_url``, by default a SQLite file in the state folder, or PostgreSQL (tables
``catalogue_<name>_…``).  They are searched through a tantivy index rebuilt from it
(:class:`~continuum_hub.catalogue.index.fulltext.FullTextIndex`, a folder on this host); while
that index is missing, corrupt or being rebuilt, searches go through the database
(:class:`~continuum_hub.catalogue.index.fallback.FallbackSearch`) and :meth:`health` says the
source is degraded.  Harvesters fill the store: at start and every ``harvest_interval``
seconds, each of the ``harvest`` specs (a folder tree, a STAC catalogue, a list) is harvested
incrementally by ``harvester`` (:func:`continuum_hub.catalogue.harvest.run.harvest`).

Configuration (one item of ``CatalogueApp.sources``)::

    {"name": "demo", "kind": "builtin",
     "site_roots": {"alpha": ["/srv/archive/alpha"], "beta": ["/srv/archive/beta"]},
     "harvest": [{"path": "/srv/archive/alpha", "site": "alpha", "kind": "files"}],
     "harvest_interval": 3600}

An entry's ``access`` is a ready-to-run cell opening its replica at the site the user chose
(the query's first ``sites`` value, else the first replica), the idiomatic way for its format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, Unicode, validate
from traitlets.utils.importstring import import_item

from continuum_spawners.private_file import sqlite_path

from ..index.fallback import DEFAULT_CAP, FallbackSearch
from ..index.fulltext import FullTextIndex, IndexUnavailable
from ..index.store import CatalogueStore
from ..model import Entry, Page, Query, Replica, SourceHealth, visible
from .base import CatalogueSource

log = logging.getLogger(__name__)

#: harvest kinds a spec may name
HARVEST_KINDS = ("files", "stac", "list")
#: format (lowercase) → Python cell opening a path ``{path}`` (a Python literal)
OPENERS = {
    "netcdf": "import xarray as xr\n\nds = xr.open_dataset({path})\nds",
    "hdf5": "import xarray as xr\n\nds = xr.open_dataset({path})\nds",
    "zarr": "import xarray as xr\n\nds = xr.open_zarr({path})\nds",
    "fits": "from astropy.io import fits\n\nhdul = fits.open({path})\nhdul.info()",
    "parquet": "import pyarrow.parquet as pq\n\ntable = pq.read_table({path})\ntable.schema",
    "root": "import uproot\n\nfile = uproot.open({path})\nfile.keys()",
}
#: other spellings of the formats above
FORMAT_ALIASES = {"nc": "netcdf", "netcdf4": "netcdf", "h5": "hdf5", "hdf": "hdf5", "fit": "fits"}


def choose_replica(entry: Entry, site: str | None = None) -> Replica | None:
    """The replica to open: an available one at ``site``, else the first available, else any."""
    ready = [r for r in entry.replicas if r.state == "available"] or entry.replicas
    if site:
        for replica in ready:
            if replica.site == site:
                return replica
    return ready[0] if ready else None


def access_code(entry: Entry, site: str | None = None) -> dict[str, str]:
    """A ready-to-run Python cell for ``entry``'s replica at ``site`` (see :data:`OPENERS`).

    The path enters the code as a Python string literal (``repr``), never spliced as code.
    """
    replica = choose_replica(entry, site)
    path = replica.path if replica and replica.path else entry.identifier
    fmt = entry.format.lower()
    opener = OPENERS.get(FORMAT_ALIASES.get(fmt, fmt))
    code = opener.format(path=repr(path)) if opener else f"path = {path!r}"
    return {
        "language": "python",
        "code": code,
        "site": replica.site if replica else "",
        "path": path,
    }


class BuiltinSource(CatalogueSource):
    """The embedded catalogue (see the module docstring)."""

    kind = "builtin"

    state_dir = Unicode(
        "",
        config=True,
        help="Folder of this source's files; default: the service's ``state_dir``.",
    )
    db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the records' database (``postgresql+psycopg://…``: tables
        ``catalogue_<name>_…``, so several sources may share it).  Default: the SQLite file
        ``<state_dir>/builtin-<name>.sqlite`` (0600), as before this option.""",
    )
    db_path = Unicode(
        "",
        config=True,
        help="""Deprecated (use ``db_url``): a SQLite file of the records, read as
        ``sqlite:///<db_path>`` when ``db_url`` is not set.""",
    )
    index_dir = Unicode(
        "",
        config=True,
        help="""Folder of the full-text index; default: the SQLite file's path without its
        suffix and ``.index`` (``<state_dir>/builtin-<name>.index`` for another database).""",
    )
    site_roots = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        config=True,
        help="Site → the archive folders harvested there (names the replica's location).",
    )
    harvest = List(
        Dict(),
        config=True,
        help="What to harvest: dicts ``{path, site, kind}`` with kind files, stac or list.",
    )
    harvest_interval = Float(
        3600.0,
        config=True,
        help="Seconds between incremental re-harvests (0: only at start).",
    )
    harvester = Unicode(
        "continuum_hub.catalogue.harvest.run.harvest",
        config=True,
        help="Import string of the function ``harvest(store, spec)`` run for each spec.",
    )
    auto_rebuild = Bool(
        True,
        config=True,
        help="Rebuild the full-text index in the background when it is missing or stale.",
    )
    fallback_cap = Integer(
        DEFAULT_CAP,
        config=True,
        help="Matches (newest first) one search ranks while the full-text index is unavailable.",
    )

    @validate("harvest")
    def _validate_harvest(self, proposal: Any) -> list[dict[str, Any]]:
        for spec in proposal.value:
            if not spec.get("path") or not spec.get("site"):
                raise ValueError(f"a harvest spec needs a path and a site: {spec!r}")
            if spec.get("kind", "files") not in HARVEST_KINDS:
                raise ValueError(f"harvest kind must be one of {HARVEST_KINDS}: {spec!r}")
        return proposal.value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store: CatalogueStore | None = None
        self.index: FullTextIndex | None = None
        self.fallback: FallbackSearch | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rebuild: asyncio.Task[Any] | None = None
        self.last_harvest: dict[str, Any] = {}

    # -- life cycle ---------------------------------------------------------------------------

    def database_url(self) -> str:
        """The records' database: ``db_url``, else the (deprecated) ``db_path`` or the default
        SQLite file."""
        if self.db_url:
            return self.db_url
        state = self.state_dir or getattr(self.parent, "state_dir", "") or "."
        name = self.name or "catalogue"
        return (
            f"sqlite:///{Path(self.db_path or Path(state) / f'builtin-{name}.sqlite').absolute()}"
        )

    def paths(self) -> tuple[Path | None, Path]:
        """The SQLite file (``None`` on another database) and the index folder this source
        uses."""
        db = sqlite_path(self.database_url())
        if db is not None:
            return db, Path(self.index_dir or db.with_suffix(".index"))
        state = self.state_dir or getattr(self.parent, "state_dir", "") or "."
        default = Path(state).absolute() / f"builtin-{self.name or 'catalogue'}.index"
        return None, Path(self.index_dir or default)

    async def start(self) -> None:
        """Open the store and the index; rebuild the index (in the background) when unusable;
        start harvesting."""
        if self.db_path and not self.db_url:
            log.warning("%s: BuiltinSource.db_path is deprecated: use db_url", self.name)
        _, index_dir = self.paths()
        url, name = self.database_url(), self.name or "catalogue"
        self.store = await asyncio.to_thread(CatalogueStore, url, name)
        self.index = FullTextIndex(self.store, index_dir)
        self.fallback = FallbackSearch(self.store, cap=self.fallback_cap)
        if not await asyncio.to_thread(self.index.open):
            log.warning(
                "%s: %s; searching the database until it is rebuilt", self.name, self.index.reason
            )
            self._start_rebuild()
        if self.harvest:
            self._spawn(self._harvest_loop())

    async def stop(self) -> None:
        """Stop harvesting and close the index and the store."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.index is not None:
            self.index.close()
        if self.store is not None:
            self.store.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_rebuild(self, asked: bool = False) -> None:
        """Rebuild the index in the background unless that is under way (or not wanted)."""
        if not (asked or self.auto_rebuild):
            return
        if self._rebuild is None or self._rebuild.done():
            self._rebuild = asyncio.ensure_future(self._rebuild_index())
            self._tasks.add(self._rebuild)
            self._rebuild.add_done_callback(self._rebuilt)

    def _rebuilt(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: rebuilding the full-text index failed: %s", self.name, task.exception())

    async def rebuild(self) -> int:
        """Rebuild the full-text index from the store (or wait for the rebuild under way);
        returns the number of entries indexed."""
        self._start_rebuild(asked=True)
        assert self._rebuild is not None
        return int(await asyncio.shield(self._rebuild))

    async def _rebuild_index(self) -> int:
        assert self.index is not None
        started = time.monotonic()
        count = await asyncio.to_thread(self.index.rebuild)
        log.info("%s: indexed %d entries in %.1f s", self.name, count, time.monotonic() - started)
        return count

    async def harvest_now(self) -> dict[str, dict[str, Any]]:
        """Harvest every spec once (incrementally); returns each spec's report by path."""
        assert self.store is not None
        function = import_item(self.harvester)
        reports: dict[str, dict[str, Any]] = {}
        for spec in self.harvest:
            try:
                # the entries are this source's: their ids start with its name
                result = await asyncio.to_thread(
                    function, self.store, {"kind": "files", **spec, "source": self.name}
                )
            except Exception as exc:  # one bad archive must not stop the others
                log.error("%s: harvesting %s failed: %s", self.name, spec["path"], exc)
                reports[spec["path"]] = {"error": str(exc)[:300]}
                continue
            to_json = getattr(result, "to_json", None)
            reports[spec["path"]] = to_json() if to_json else {"written": int(result)}
        self.last_harvest = {"at": time.time(), "reports": reports}
        return reports

    async def _harvest_loop(self) -> None:
        while True:
            await self.harvest_now()
            if self.harvest_interval <= 0:
                return
            await asyncio.sleep(self.harvest_interval)

    # -- answering ----------------------------------------------------------------------------

    def _search(self, query: Query) -> Page:
        assert self.index is not None and self.fallback is not None
        if self.index.ready:
            try:
                page = self.index.page(query)
            except IndexUnavailable as exc:
                log.warning("%s: %s; searching the database", self.name, exc)
            else:
                return page
        elif not self.index.rebuilding and not self.index.reason:
            # the folder went away under an open index: rebuild, meanwhile search the database
            self.index.reason = "the full-text index folder is missing"
        return self.fallback.page(query)

    async def search(self, query: Query) -> Page:
        """Ranked entries for ``query`` with totals and facets (see the module docstring)."""
        if self.store is None:
            raise RuntimeError(f"source {self.name} has not been started")
        if query.sources and self.name not in query.sources:
            return Page(entries=[], total=0, facets={})
        # everything in this store is this source's, whatever a harvest called it
        page = await asyncio.to_thread(self._search, replace(query, sources=()))
        if self.index is not None and not self.index.ready:
            self._start_rebuild()
        site = query.sites[0] if query.sites else None
        page.entries = [self._described(e, site) for e in page.entries if visible(e, query.groups)]
        if page.facets:
            page.facets["source"] = {self.name: page.total or 0} if page.total else {}
        return page

    async def get(self, identifier: str, query: Query) -> Entry | None:
        """The entry, with the code that opens it at the query's site, if the user may see it."""
        if self.store is None:
            raise RuntimeError(f"source {self.name} has not been started")
        entry = await asyncio.to_thread(self.store.get, identifier)
        if entry is None or not visible(entry, query.groups):
            return None
        return self._described(entry, query.sites[0] if query.sites else None)

    def _described(self, entry: Entry, site: str | None) -> Entry:
        """The entry as this source's, its replicas' locations named, its code for ``site``."""
        entry.source, entry.id = self.name, f"{self.name}:{entry.identifier}"
        entry.replicas = [self._located(r) for r in entry.replicas]
        generated = access_code(entry, site)
        if entry.format or not entry.access.get("code"):
            entry.access = generated
        return entry

    def _located(self, replica: Replica) -> Replica:
        if replica.location:
            return replica
        for root in self.site_roots.get(replica.site, []):
            if replica.path == root or replica.path.startswith(root.rstrip("/") + "/"):
                return Replica(replica.site, root, replica.path, replica.state, replica.size)
        return replica

    async def health(self) -> SourceHealth:
        """Healthy while the store answers; the message says when search is degraded."""
        if self.store is None or self.index is None:
            return SourceHealth(self.name, self.kind, False, message="not started")
        started = time.monotonic()
        count = await asyncio.to_thread(self.store.count)
        latency = (time.monotonic() - started) * 1000
        if self.index.ready:
            message = f"{count} entries"
        else:
            why = "the full-text index is being rebuilt" if self.index.rebuilding else None
            message = (
                f"degraded: {count} entries; {why or self.index.reason}; searching the database "
                f"(the newest {self.fallback_cap} matches of each search)"
            )
        return SourceHealth(self.name, self.kind, True, latency_ms=latency, message=message)
