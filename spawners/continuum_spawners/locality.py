"""Data locality in placement: where to start work that reads data held at some sites.

One pure rule, used wherever a choice of site is made for the user (the spawn form's *Start
where it runs soonest*, the workflow service's ``site: soonest`` runs and moves):

1. **Never a site without a replica** of the data the user is about to read, unless the user
   asked for a transfer (``transfer``): computing next to the data beats a queue that is a
   few minutes shorter, and moving data is the user's decision, not ours.
2. **Among the admissible sites, the soonest start** by the sites' own estimates (the
   candidates arrive ranked by :func:`~continuum_spawners.estimates.by_start`, and their order
   is kept).  With a transfer requested every site is admissible; among equally soon starts
   a site holding the data goes first.
3. Without any data sites, the rule is plain *soonest*.

Every choice is explained in one line for the UI (:func:`reason`):
``beta: data present, starts now`` · ``alpha: no replica (transfer requested), starts in about
5 min`` · ``alpha: starts now`` (no data named).

Data sites are site registry names (the catalogue's replicas carry them); :func:`data_fields`
checks them (and the catalogue ids shown with them) wherever user options are validated
(:func:`~continuum_spawners.options.validate_options`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .registry_schema import NAME
from .schedulers.base import Estimate

T = TypeVar("T")

#: most catalogue entry ids a request may name, and their longest accepted length
MAX_DATASETS = 20
MAX_DATASET_CHARS = 512
# a catalogue entry id: ``source:identifier`` (the catalogue's own rule, restated here because
# continuum_spawners may not import continuum_hub)
_DATASET_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}:[^\x00-\x1f\x7f]+$")
_TRUE, _FALSE = ("1", "true", "on", "yes"), ("", "0", "false", "off", "no")

#: when an estimate has no start: after every estimate that has one
_LATEST = datetime.max.replace(tzinfo=UTC)


class NoReplicaError(ValueError):
    """No candidate site holds the data, and the user did not ask for a transfer."""


class DataFieldError(ValueError):
    """A data field of user options (``data_sites``, ``datasets``, ``transfer``) is refused."""


def when(estimate: Estimate, at: datetime | None = None) -> str:
    """An estimate in words: ``starts now``, ``starts in about 20 min``, ``no estimate (…)``."""
    if estimate.start is None:
        return f"no estimate ({estimate.message})" if estimate.message else "no estimate"
    minutes = round((estimate.start - (at or datetime.now(UTC))).total_seconds() / 60)
    if minutes <= 1:
        return "starts now"
    if minutes < 120:
        return f"starts in about {minutes} min"
    return f"starts in about {round(minutes / 60)} h"


def holds_data(site: str, data_sites: Collection[str]) -> bool:
    """Whether ``site`` holds the data (trivially true when no data is named)."""
    return not data_sites or site in data_sites


def reason(
    site: str,
    estimate: Estimate,
    data_sites: Collection[str] = (),
    transfer: bool = False,
    at: datetime | None = None,
) -> str:
    """The one-line explanation of placing work at ``site`` (see the module)."""
    start = when(estimate, at)
    if not data_sites:
        return f"{site}: {start}"
    if site in data_sites:
        return f"{site}: data present, {start}"
    if transfer:
        return f"{site}: no replica (transfer requested), {start}"
    return f"{site}: no replica of the data, {start}"


def no_replica_message(data_sites: Iterable[str]) -> str:
    """What a user is told when none of their fitting sites holds the data."""
    held = ", ".join(sorted(data_sites))
    return (
        f"none of your sites that fit this request holds the data (it is at: {held}); "
        "ask for a transfer, or choose other resources"
    )


def admissible(sites: Iterable[str], data_sites: Collection[str], transfer: bool) -> list[str]:
    """Those of ``sites`` the rule allows (all of them with a transfer or without data)."""
    return [site for site in sites if transfer or holds_data(site, data_sites)]


def choose(
    ranked: Sequence[tuple[T, Estimate]],
    data_sites: Collection[str],
    transfer: bool = False,
    site_of: Callable[[T], str] = lambda option: option.site,  # type: ignore[attr-defined]
) -> list[tuple[T, Estimate]]:
    """Apply the rule to candidates ranked soonest first; the first of the answer wins.

    Parameters
    ----------
    ranked
        Candidates (anything whose site ``site_of`` names) with their estimates, soonest
        first.
    data_sites
        Sites holding replicas of the data to be read (empty: no data named).
    transfer
        Whether the user asked for the data to be moved where the work runs.

    Raises
    ------
    NoReplicaError
        Candidates there were, but none at a data site and no transfer was asked for.
    """
    if not data_sites:
        return list(ranked)
    if not transfer:
        kept = [pair for pair in ranked if site_of(pair[0]) in data_sites]
        if ranked and not kept:
            raise NoReplicaError(no_replica_message(data_sites))
        return kept

    def key(pair: tuple[T, Estimate]) -> tuple[bool, datetime, bool]:
        start = pair[1].start
        return (start is None, start or _LATEST, site_of(pair[0]) not in data_sites)

    # a stable sort: equal starts keep the ranking's order (e.g. GPU partitions last)
    return sorted(ranked, key=key)


def _data_sites(value: Any, known: Callable[[str], bool]) -> tuple[str, ...]:
    """Site names from a list or comma-separated strings (a query's ``data_sites=a,b``);
    known sites only."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or len(value) > 64:
        raise DataFieldError("data_sites must be a list of site names")
    if sum(len(item) for item in value if isinstance(item, str)) > 1000:
        raise DataFieldError("data_sites is too long")
    items = [
        part.strip() if isinstance(part, str) else part
        for item in value
        for part in (item.split(",") if isinstance(item, str) else [item])
        if not isinstance(part, str) or part.strip()
    ]
    names = []
    for item in items:
        if not isinstance(item, str) or not re.match(NAME, item):
            shown = item[:40] if isinstance(item, str) else type(item).__name__
            raise DataFieldError(f"data_sites: {shown!r} is not a site name")
        name = item
        if not known(name):
            raise DataFieldError(f"data_sites: unknown site {name!r}")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _datasets(value: Any) -> tuple[str, ...]:
    """Catalogue entry ids (``source:identifier``), only shown to the user."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise DataFieldError("datasets must be a list of catalogue entry ids")
    if len(value) > MAX_DATASETS:
        raise DataFieldError(f"datasets: at most {MAX_DATASETS} catalogue entries")
    ids = []
    for item in value:
        if (
            not isinstance(item, str)
            or len(item) > MAX_DATASET_CHARS
            or not _DATASET_ID.match(item)
        ):
            shown = item[:40] if isinstance(item, str) else type(item).__name__
            raise DataFieldError(f"datasets: {shown!r} is not a catalogue entry id (source:id)")
        ids.append(item)
    return tuple(dict.fromkeys(ids))


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise DataFieldError(f"{name} must be true or false")


def data_fields(options: Mapping[str, Any], known: Callable[[str], bool]) -> dict[str, Any]:
    """The data fields of user options, validated: ``data_sites`` (site names for which
    ``known`` is true; a list, or comma-separated), ``datasets`` (catalogue entry ids, at most
    :data:`MAX_DATASETS`) and ``transfer`` (a flag).

    Raises
    ------
    DataFieldError
        With a message for the user.
    """
    return {
        "data_sites": _data_sites(options.get("data_sites"), known),
        "datasets": _datasets(options.get("datasets")),
        "transfer": _flag("transfer", options.get("transfer", False)),
    }
