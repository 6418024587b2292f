"""What the Rucio source makes of Rucio's answers: DID checks, replicas per site, rule states.

Pure functions over the dicts ``rucio-clients`` returns, so they are tested without a server:

* :func:`parse_did` checks a ``scope:name`` identifier against Rucio's own naming rules before
  it is sent anywhere (no wildcards, no path separators, bounded length);
* :func:`replicas_in_order` turns ``list_replicas`` records into one :class:`Replica` per RSE,
  **in the order Rucio returned** them for the user's site (``client_location``): each file's
  ``pfns`` are ordered, so an RSE's place is where it first appears;
* :func:`request_state` maps a replication rule to the catalogue's request states, never
  claiming a copy before Rucio says ``OK``;
* small helpers: :func:`passes_filters` (site and size filters), :func:`access_code`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..model import Entry, Query, QueryError, Replica

#: Rucio's scope and name rules (policy ``generic``); anything else is refused before a call
SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,24}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,249}$")
ACCOUNT = re.compile(r"^[a-z0-9_-]{1,25}$")
#: Rucio rule state → the catalogue's request state
RULE_STATES = {
    "OK": "available",
    "REPLICATING": "replicating",
    "INJECT": "requested",
    "WAITING_APPROVAL": "requested",
    "STUCK": "failed",
    "SUSPENDED": "failed",
}
#: Rucio replica state → the catalogue's replica state
REPLICA_STATES = {"AVAILABLE": "available", "COPYING": "replicating"}


def parse_did(identifier: str) -> tuple[str, str]:
    """``scope:name`` → (scope, name); :class:`QueryError` for anything Rucio would not name.

    Examples
    --------
    >>> parse_did("hep:higgs-2024")
    ('hep', 'higgs-2024')
    """
    scope, sep, name = identifier.partition(":")
    if not sep or not SCOPE.match(scope) or not NAME.match(name) or ".." in name:
        raise QueryError(
            "not a Rucio data identifier (scope:name; letters, digits, '.', '_', '-'; "
            f"name at most 250 characters): {identifier[:80]!r}"
        )
    return scope, name


@dataclass
class _Tally:
    rse: str
    files: int = 0
    available: int = 0
    copying: int = 0
    size: int = 0
    path: str = ""


def replicas_in_order(
    records: Iterable[Mapping[str, Any]],
    site_of: Callable[[str], str | None],
    single_file: bool,
) -> tuple[list[Replica], int, int]:
    """One replica per RSE in Rucio's order, with the files it holds.

    Parameters
    ----------
    records
        ``list_replicas(..., all_states=True)`` answers (one per file).
    site_of
        RSE → registry site name (``""`` when at no known site).
    single_file
        Whether the entry is one file (its replica's ``path`` is then the file's PFN).

    Returns
    -------
    (replicas, files, size)
        An RSE holding every file is ``available``; one with copies in flight
        ``replicating``; one with some files only, ``unavailable`` (partial).
    """
    tallies: dict[str, _Tally] = {}
    files = size = 0
    for record in records:
        files += 1
        size += int(record.get("bytes") or 0)
        states = record.get("states") or {}
        seen: set[str] = set()
        for pfn, info in (record.get("pfns") or {}).items():
            rse = str(info.get("rse", ""))
            if not rse or rse in seen:
                continue
            seen.add(rse)
            tally = tallies.setdefault(rse, _Tally(rse))
            tally.files += 1
            tally.size += int(record.get("bytes") or 0)
            tally.path = tally.path or pfn
            state = REPLICA_STATES.get(str(states.get(rse, "")), "unavailable")
            tally.available += state == "available"
            tally.copying += state == "replicating"
    replicas = []
    for tally in tallies.values():
        if tally.available == files:
            state = "available"
        elif tally.copying:
            state = "replicating"
        else:
            state = "unavailable"
        replicas.append(
            Replica(
                site=site_of(tally.rse) or "",
                location=tally.rse,
                path=tally.path if single_file else "",
                state=state,
                size=tally.size,
            )
        )
    return replicas, files, size


def request_state(
    rule: Mapping[str, Any] | None, history: Iterable[Mapping[str, Any]] = ()
) -> tuple[str, str]:
    """(state, message) of a replication rule, or of one Rucio no longer lists.

    ``rule`` is ``get_replication_rule``'s answer (``None`` when Rucio answered *RuleNotFound*),
    ``history`` the DID's rule history filtered to this rule.  A rule past its ``expires_at``
    is ``expired`` even before Rucio's judge-cleaner removes it; a removed rule that Rucio's
    history holds is ``expired`` too (the lifetime ran out, or it was deleted).
    """
    if rule is None:
        if any(True for _ in history):
            return "expired", "Rucio removed the rule (its lifetime ended or it was deleted)"
        return "failed", "Rucio has no such rule"
    expires = rule.get("expires_at")
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires)
    if isinstance(expires, datetime):
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            return "expired", f"the rule's lifetime ended at {expires:%Y-%m-%d %H:%M} UTC"
    state = str(rule.get("state", ""))
    mapped = RULE_STATES.get(state, "failed")
    ok, copying = rule.get("locks_ok_cnt", 0), rule.get("locks_replicating_cnt", 0)
    if mapped == "replicating":
        message = f"{ok} files there, {copying} waiting for a transfer"
    elif mapped == "available":
        message = "all files are there"
    else:
        message = f"Rucio rule state {state}" + (f": {rule['error']}" if rule.get("error") else "")
    return mapped, message


def did_dict(identifier: str) -> dict[str, str]:
    """``scope:name`` → ``{"scope", "name"}`` (an identifier already checked)."""
    scope, name = identifier.split(":", 1)
    return {"scope": scope, "name": name}


def passes_filters(entry: Entry, query: Query) -> bool:
    """Whether ``entry`` (replicas read) passes the query's site and size filters."""
    if query.sites and not set(entry.sites) & set(query.sites):
        return False
    size = entry.size
    if query.size_min is not None and (size is None or size < query.size_min):
        return False
    return not (query.size_max is not None and (size is None or size > query.size_max))


def access_code(scope: str, name: str) -> str:
    """*Insert code*: the DID's replicas with the user's own Rucio client configuration."""
    did = {"scope": scope, "name": name}
    return (
        "from rucio.client import Client\n\n"
        "client = Client()\n"
        f"replicas = list(client.list_replicas([{did!r}]))\n"
        "paths = [next(iter(r['pfns'])) for r in replicas if r['pfns']]\n"
        "paths\n"
    )
