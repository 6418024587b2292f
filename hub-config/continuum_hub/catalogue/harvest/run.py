"""One incremental harvest into the built-in catalogue's store (:func:`harvest`).

The kind's scanner lists what is there with fingerprints; what has the fingerprint the store
recorded is *unchanged* and not read again; new and changed things are described and written in
batches; identifiers under this root that the store knows but the scan did not find are
*removed*.  A walk cut short at a bound removes nothing.

Data on two sites (folder harvests): a file found on site S at ``<label>/<path>`` with the same
size as an entry already harvested from another site's root with the same label
(``<X>/<label>/<path>``) is added to that entry as a second replica instead of becoming an
entry of its own (it is not read: the first site's description stands).  The entry keeps the
identifier of the site where it was harvested first, so its id stays stable; S's fingerprint is
kept under S's own identifier (``S/<label>/<path>``), which is how a later harvest of S finds
it unchanged, changed (a different size: it leaves the shared entry and gets its own) or
removed (its replica leaves the entry; the entry goes with its last replica).  When the first
site's copy goes while another site still holds the data, the entry keeps its identifier and
the first site's fingerprint becomes :data:`GONE`, which keeps the entry findable by the rule
and is neither removed again nor counted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from ..model import Entry, Replica
from .spec import Found, HarvestReport, HarvestSpec

#: entries written per store transaction
BATCH = 500
#: the fingerprint of a site's copy that went while its entry lives on at other sites
GONE = (-1.0, -1)


class Store(Protocol):
    """What a harvest needs of :class:`~continuum_hub.catalogue.index.store.CatalogueStore`."""

    def upsert(
        self, entries: Any, fingerprints: Mapping[str, tuple[float, int]] | None = None
    ) -> int: ...
    def delete(self, identifiers: Any) -> int: ...
    def fingerprints(self, prefix: str = "") -> dict[str, tuple[float, int]]: ...
    def get(self, identifier: str) -> Entry | None: ...


def _tail(identifier: str) -> str:
    """``<label>/<path>`` of ``<site>/<label>/<path>``."""
    return identifier.partition("/")[2]


def _with_replicas(entry: Entry, replicas: list[Replica]) -> Entry:
    sites = list(dict.fromkeys(r.site for r in replicas if r.site))
    return replace(entry, replicas=replicas, sites=sites)


class Harvest:
    """The incremental algorithm of one harvest (see the module docstring)."""

    def __init__(self, store: Store, spec: HarvestSpec, report: HarvestReport) -> None:
        self.store = store
        self.spec = spec
        self.report = report
        self.entries: list[Entry] = []
        self.prints: dict[str, tuple[float, int]] = {}
        self._tails: dict[str, list[str]] | None = None

    def tails(self) -> dict[str, list[str]]:
        """Known identifiers by ``<label>/<path>`` (read once, only when the rule needs it)."""
        if self._tails is None:
            self._tails = {}
            for identifier in self.store.fingerprints():
                self._tails.setdefault(_tail(identifier), []).append(identifier)
        return self._tails

    def host(self, found: Found) -> Entry | None:
        """Another site's entry holding the same data (same label, path and size), if any."""
        assert found.replica is not None
        for other in self.tails().get(_tail(found.identifier), []):
            if other == found.identifier:
                continue
            entry = self.store.get(other)
            if entry is not None and entry.size == found.fingerprint[1]:
                return entry
        return None

    def holder(self, identifier: str) -> Entry | None:
        """The other site's entry holding this site's replica of ``identifier``, if any."""
        for other in self.tails().get(_tail(identifier), []):
            entry = self.store.get(other) if other != identifier else None
            if entry is not None and any(r.site == self.spec.site for r in entry.replicas):
                return entry
        return None

    def put(self, entry: Entry, fingerprint: tuple[str, tuple[float, int]] | None = None) -> None:
        self.entries.append(entry)
        if fingerprint is not None:
            self.prints[fingerprint[0]] = fingerprint[1]
        if len(self.entries) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.entries or self.prints:
            self.store.upsert(self.entries, self.prints)
        self.entries, self.prints = [], {}

    def update(self, found: Found, before: tuple[float, int] | None) -> None:
        """Describe (or attach) one new or changed thing (``before``: its old fingerprint)."""
        site = self.spec.site
        known = before is not None
        own = self.store.get(found.identifier) if known and found.replica is not None else None
        if found.replica is not None and own is None:
            holder = self.holder(found.identifier) if known else None
            host = self.host(found)
            if holder is not None and (host is None or host.identifier != holder.identifier):
                # it changed size: it leaves the entry it shared
                self.flush()
                kept = [r for r in holder.replicas if r.site != site]
                if kept:
                    self.store.upsert([_with_replicas(holder, kept)])
                else:
                    self.store.delete([holder.identifier])
            if host is not None:
                kept = [r for r in host.replicas if r.site != site]
                self.flush()
                self.store.upsert(
                    [_with_replicas(host, [*kept, found.replica])],
                    {found.identifier: found.fingerprint},
                )
                return
        entry = found.build()
        if own is not None:
            # replicas other sites added keep their place while they still match; those that
            # no longer do lose their fingerprint, so their site's next harvest describes them
            others = [r for r in own.replicas if r.site != site and r.size == entry.size]
            gone = {r.site for r in own.replicas if r.site != site} - {r.site for r in others}
            if gone:
                self.flush()
                self.store.delete([f"{other}/{_tail(found.identifier)}" for other in sorted(gone)])
            entry = _with_replicas(entry, [*entry.replicas, *others])
        self.put(entry, (found.identifier, found.fingerprint))

    def remove(self, identifier: str) -> int:
        """Forget one identifier this site no longer has; returns entries deleted."""
        site = self.spec.site
        own = self.store.get(identifier) if self.spec.kind == "files" else None
        target = (
            own
            if own is not None
            else (self.holder(identifier) if self.spec.kind == "files" else None)
        )
        self.flush()
        if target is None:
            return self.store.delete([identifier])
        kept = [r for r in target.replicas if r.site != site]
        if own is not None and kept:
            self.store.upsert([_with_replicas(own, kept)], {identifier: GONE})
            return 0
        deleted = self.store.delete([identifier])  # its fingerprint (and its entry, when own)
        if kept:
            self.store.upsert([_with_replicas(target, kept)])
            return 0
        return deleted + (self.store.delete([target.identifier]) if own is None else 0)


def harvest(store: Store, spec: HarvestSpec | Mapping[str, Any]) -> HarvestReport:
    """Harvest ``spec`` into ``store`` incrementally; the report counts what happened.

    Parameters
    ----------
    store
        The built-in catalogue's :class:`~continuum_hub.catalogue.index.store.CatalogueStore`.
    spec
        A :class:`~.spec.HarvestSpec` or a mapping of its fields (``path``, ``site``, ``kind``,
        ``source``, ``vo``, ``visibility``, ``label``); :class:`~.spec.HarvestError` when it
        is not valid.

    Returns
    -------
    HarvestReport
        seen / new / changed / removed / unchanged / problems, seconds and files per second.
    """
    spec = HarvestSpec.from_mapping(spec)
    report = HarvestReport(path=str(spec.path), site=spec.site, kind=spec.kind)
    started = time.monotonic()
    if spec.kind == "files":
        from .files import FolderHarvest as scanner
    elif spec.kind == "stac":
        from .stac import StacHarvest as scanner
    else:
        from .listing import ListHarvest as scanner
    scan = scanner(spec, report)
    found = scan.scan()
    prefix = f"{spec.site}/{scan.label}/"
    known = store.fingerprints(prefix)
    work = Harvest(store, spec, report)
    report.seen = len(found)
    for identifier, item in found.items():
        before = known.get(identifier)
        if before is not None and tuple(before) == tuple(item.fingerprint):
            report.unchanged += 1
            continue
        try:
            work.update(item, None if before is None else tuple(before))
        except Exception as exc:  # a file we cannot read never stops the harvest
            report.problem(identifier.removeprefix(prefix), exc)
            continue
        if before is None or tuple(before) == GONE:
            report.new += 1
        else:
            report.changed += 1
    work.flush()
    if not report.truncated:
        for identifier in sorted(i for i in set(known) - set(found) if known[i] != GONE):
            work.remove(identifier)
            report.removed += 1
    report.seconds = time.monotonic() - started
    return report
