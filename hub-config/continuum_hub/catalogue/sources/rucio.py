"""Rucio as a catalogue source (kind ``rucio``): DIDs with their metadata and replicas per site.

Every call runs **as the user's own Rucio account**: the service authenticates with its own
Rucio identity (``userpass``; Rucio lets one identity map to several accounts and the client
picks ``account=``), and the site's Rucio administrators map that identity to each account the
service may act for (``rucio-admin identity add --account alice --type USERPASS --id
continuum-catalogue``).  Hub user → Rucio account by :attr:`RucioSource.accounts`, else
:attr:`RucioSource.account_pattern`.  Rules the user asks for are owned by their account and
count against their quota.  Why not the user's OIDC token: see the README, *Connecting a real
Rucio instance*.

Visibility: :attr:`RucioSource.scopes` maps a scope to its VO (a hub group) and says whether
its DIDs are ``public`` or private to the VO (``vo``); scopes not listed are never searched nor
returned, even by id.

Replicas are listed with ``client_location={"site": S}`` (S: the first site of the query's
``sites`` the user may use, else their first allowed site), so their order is Rucio's; RSE →
site by the registry's ``rse:`` lists first, else by the RSE's ``site`` attribute.  At most
one ``list_replicas`` call per :data:`REPLICA_BATCH` DIDs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from traitlets import Bool, Dict, Integer, Type, Unicode, validate

from ..model import Entry, Page, Query, QueryError, SourceHealth, facet_counts, visible
from .base import ActionRefused, CatalogueSource, SourceUnavailable
from .rucio_replicas import (
    ACCOUNT,
    SCOPE,
    access_code,
    did_dict,
    parse_did,
    passes_filters,
    replicas_in_order,
    request_state,
)

#: DIDs per ``list_replicas`` call (Rucio's own bulk limit)
REPLICA_BATCH = 1000
#: DIDs a search reads per scope before it stops counting
MAX_SCAN = 2000
#: fixed DID metadata columns shown (free-form keys need Rucio on PostgreSQL)
#: Rucio's answers to a request it refuses (the user sees the name and message), as opposed
#: to a Rucio that does not answer (the source is then unavailable)
REFUSALS = (
    "AccessDenied",
    "InsufficientAccountLimit",
    "InsufficientTargetRSEs",
    "InvalidRSEExpression",
    "InvalidReplicationRule",
    "InputValidationError",
    "UnsupportedOperation",
)
META_KEYS = ("project", "datatype", "campaign", "run_number", "stream_name", "version")


class RucioSource(CatalogueSource):
    """DIDs of a Rucio instance (see the module's description)."""

    kind = "rucio"

    url = Unicode(config=True, help="The Rucio server's URL (``https://rucio.example.org``).")
    auth_url = Unicode("", config=True, help="Rucio's authentication server URL (default: url).")
    identity = Unicode(
        "continuum-catalogue",
        config=True,
        help="The service's Rucio ``userpass`` identity, mapped to every user account.",
    )
    password_file = Unicode(
        config=True, help="File (mode 0600) holding the identity's password; never in config."
    )
    ca_cert = Unicode(
        "", config=True, help="CA bundle for an https Rucio (default: the system's roots)."
    )
    verify = Bool(True, config=True, help="Verify the server's TLS certificate.")
    account_pattern = Unicode(
        "{username}", config=True, help="Hub username → Rucio account, e.g. ``hub_{username}``."
    )
    accounts = Dict(
        {}, config=True, help="Hub username → Rucio account, before ``account_pattern``."
    )
    scopes = Dict(
        {},
        config=True,
        help="Scope → {'vo': hub group, 'visibility': 'public' or 'vo'}; others are hidden.",
    )
    rule_lifetime = Integer(
        7 * 86400, config=True, help="Seconds a *make available* rule lives (0: for ever)."
    )
    request_timeout = Integer(30, config=True, help="Seconds one HTTP request to Rucio may take.")
    registry_path = Unicode(
        "", config=True, help="The site registry (default: the catalogue service's)."
    )
    client_class = Type(
        "rucio.client.Client", config=True, help="The Rucio client class (tests count calls)."
    )

    @validate("scopes")
    def _validate_scopes(self, proposal: Any) -> dict[str, Any]:
        for scope, rule in proposal["value"].items():
            if not SCOPE.match(scope) or not isinstance(rule, dict):
                raise ValueError(f"scopes: {scope!r} needs {{'vo': …, 'visibility': …}}")
            if rule.get("visibility", "vo") not in ("public", "vo") or not rule.get("vo"):
                raise ValueError(f"scopes: {scope} needs a vo and visibility public or vo")
        return dict(proposal["value"])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clients: dict[str, tuple[threading.Lock, Any]] = {}
        self._pool_lock = threading.Lock()
        self._rse_sites: dict[str, str] = {}

    # --- accounts and calls --------------------------------------------------------------
    def account_for(self, user: str) -> str:
        """The Rucio account of hub user ``user``; :class:`ActionRefused` when there is none."""
        account = self.accounts.get(user) or self.account_pattern.format(username=user)
        if not user or not ACCOUNT.match(account):
            raise ActionRefused("you have no account at this Rucio instance")
        return str(account)

    def _client(self, account: str) -> tuple[threading.Lock, Any]:
        with self._pool_lock:
            if account not in self._clients:
                with open(self.password_file, encoding="utf-8") as handle:
                    password = handle.read().strip()
                client = self.client_class(
                    rucio_host=self.url,
                    auth_host=self.auth_url or self.url,
                    account=account,
                    auth_type="userpass",
                    creds={"username": self.identity, "password": password},
                    ca_cert=(self.ca_cert or True) if self.verify else False,
                    timeout=self.request_timeout,
                )
                self._clients[account] = (threading.Lock(), client)
            return self._clients[account]

    async def _call(self, account: str, work: Callable[[Any], Any]) -> Any:
        """Run ``work(client)`` in a thread, one call at a time per account's client."""
        from rucio.common import exception as rucio_errors
        from rucio.common.exception import DataIdentifierNotFound, RuleNotFound

        def run() -> Any:
            lock, client = self._client(account)
            with lock:
                return work(client)

        try:
            return await asyncio.to_thread(run)
        except (DataIdentifierNotFound, RuleNotFound, ActionRefused, QueryError):
            raise
        except (rucio_errors.CannotAuthenticate, rucio_errors.AccountNotFound) as exc:
            raise ActionRefused(f"Rucio does not let the service act as {account}") from exc
        except tuple(getattr(rucio_errors, name) for name in REFUSALS) as exc:
            first = str(exc).strip().splitlines()[-1:] or [""]
            raise ActionRefused(f"Rucio refused: {type(exc).__name__} {first[0][:200]}") from exc
        except (rucio_errors.RucioException, OSError) as exc:
            with self._pool_lock:
                self._clients.pop(account, None)  # a fresh session next time
            raise SourceUnavailable(f"Rucio did not answer: {type(exc).__name__}") from exc

    # --- sites ---------------------------------------------------------------------------
    def _registry(self) -> Any:
        from continuum_spawners.sites import load_registry

        path = self.registry_path or getattr(self.parent, "registry_path", "")
        return load_registry(path, max_age=5.0) if path else None

    def _site_map(self, client: Any, rses: set[str]) -> dict[str, str]:
        """RSE → site: the registry's ``rse:`` lists, else Rucio's ``site`` attribute (cached)."""
        registry = self._registry()
        listed = {rse: site.name for site in registry or () for rse in site.rses}
        for rse in rses - set(listed) - set(self._rse_sites):
            self._rse_sites[rse] = str(client.list_rse_attributes(rse).get("site", ""))
        return {rse: listed.get(rse) or self._rse_sites.get(rse, "") for rse in rses}

    def user_site(self, query: Query) -> str:
        """The site replicas are ordered for: a chosen one the user may use, else their first."""
        registry = self._registry()
        allowed = [s.name for s in registry.for_groups(query.groups)] if registry else []
        chosen = [s for s in query.sites if s in allowed]
        return (chosen or allowed or [""])[0]

    # --- entries -------------------------------------------------------------------------
    def visible_scopes(self, query: Query) -> list[str]:
        """The configured scopes the query's user may see (and its ``vo`` filter keeps)."""
        return [
            scope
            for scope, rule in self.scopes.items()
            if (not query.vos or rule.get("vo") in query.vos)
            and visible(
                Entry("", "", "", "", "", vo=rule["vo"], visibility=rule.get("visibility", "vo")),
                query.groups,
            )
        ]

    def _rule(self, scope: str) -> dict[str, str] | None:
        return self.scopes.get(scope)

    def _entry(self, did: dict[str, Any], meta: dict[str, Any] | None = None) -> Entry:
        scope, name = str(did["scope"]), str(did["name"])
        rule = self._rule(scope) or {}
        kind = {"FILE": "file", "DATASET": "dataset"}.get(str(did.get("did_type")), "collection")
        meta = {k: v for k, v in (meta or {}).items() if k in META_KEYS and v is not None}
        return Entry(
            id=f"{self.name}:{scope}:{name}",
            source=self.name,
            identifier=f"{scope}:{name}",
            kind=kind,
            title=name,
            description=f"Rucio {kind} in scope {scope}",
            vo=str(rule.get("vo", "")),
            visibility=str(rule.get("visibility", "vo")),
            format=str(meta.get("datatype", "")),
            size=did.get("bytes"),
            metadata={"scope": scope, "did_type": did.get("did_type"), **meta},
            access={"language": "python", "code": access_code(scope, name)},
        )

    def _fill_replicas(self, client: Any, entries: list[Entry], site: str) -> None:
        """Replicas of ``entries`` (one ``list_replicas`` call per :data:`REPLICA_BATCH`)."""
        for start in range(0, len(entries), REPLICA_BATCH):
            batch = entries[start : start + REPLICA_BATCH]
            by_did: dict[str, list[dict[str, Any]]] = {e.identifier: [] for e in batch}
            dids = [did_dict(e.identifier) for e in batch]
            records = client.list_replicas(
                dids,
                all_states=True,
                client_location={"site": site} if site else None,
                # several collections in one call: file records must name their datasets
                resolve_parents=len(batch) > 1 and any(e.kind != "file" for e in batch),
            )
            for record in records:
                key = f"{record['scope']}:{record['name']}"
                # several DIDs in one call: a file record names its datasets in ``parents``
                if len(batch) == 1:
                    owners: Any = by_did
                else:
                    owners = [key] if key in by_did else record.get("parents") or ()
                for owner in owners:
                    if owner in by_did:
                        by_did[owner].append(record)
            rses = {i["rse"] for rs in by_did.values() for r in rs for i in r["pfns"].values()}
            sites = self._site_map(client, rses)
            for entry in batch:
                replicas, files, size = replicas_in_order(
                    by_did[entry.identifier],
                    sites.get,
                    entry.kind == "file",
                )
                entry.replicas = replicas
                entry.sites = list(
                    dict.fromkeys(r.site for r in replicas if r.site and r.state == "available")
                )
                entry.size = size if files else entry.size
                entry.metadata["files"] = files

    async def get(self, identifier: str, query: Query) -> Entry | None:
        from rucio.common.exception import DataIdentifierNotFound

        scope, name = parse_did(identifier)
        if scope not in self.visible_scopes(query):
            return None  # the same answer as a missing DID: no oracle
        site = self.user_site(query)

        def work(client: Any) -> Entry:
            meta = client.get_metadata(scope, name)
            entry = self._entry({**meta, "scope": scope, "name": name}, meta)
            self._fill_replicas(client, [entry], site)
            return entry

        try:
            return await self._call(self.account_for(query.user), work)  # type: ignore[no-any-return]
        except DataIdentifierNotFound:
            return None

    async def search(self, query: Query) -> Page:
        if query.sources and self.name not in query.sources:
            return Page(total=0)
        kinds = set(query.kinds) or {"dataset", "collection"}
        did_type = {frozenset({"file"}): "file"}.get(
            frozenset(kinds & {"file", "dataset", "collection"}),
            "all" if "file" in kinds else "collection",
        )
        if not kinds & {"dataset", "collection", "file"} or query.time_from or query.time_to:
            return Page(entries=[], total=0)  # Rucio's DIDs here carry no time range
        site = self.user_site(query)
        account = self.account_for(query.user)
        return await self._call(
            account, lambda client: self._search(client, query, kinds, did_type, site)
        )  # type: ignore[no-any-return]

    def _search(self, client: Any, query: Query, kinds: set[str], did_type: str, site: str) -> Page:
        """The blocking part of :meth:`search` (in a thread, with the user's client)."""
        words = [w.lower() for w in query.text.split()]
        # Rucio's wildcard is '*' and has no escape: ask for names containing the longest word
        # with '*' removed, then keep literal, case-blind matches of every word
        longest = max(words, key=len, default="").replace("*", "")
        pattern = f"*{longest}*" if longest else "*"
        found: list[Entry] = []
        complete = True
        for scope in self.visible_scopes(query):
            for fmt in query.formats or ("",):
                filters = {"name": pattern, **({"datatype": fmt} if fmt else {})}
                dids = client.list_dids(scope, [filters], did_type=did_type, long=True)
                for count, did in enumerate(dids):
                    if count >= MAX_SCAN:
                        complete = False
                        break
                    if all(w in str(did["name"]).lower() for w in words):
                        meta = {"datatype": fmt} if fmt else None
                        found.append(self._entry({**did, "scope": scope}, meta))
        found = [e for e in found if e.kind in kinds]
        found.sort(key=lambda e: e.identifier)
        read_all = bool(query.sites or query.size_min is not None or query.size_max is not None)
        if read_all:
            # filters on what only the replicas tell: read them for every match (batched)
            self._fill_replicas(client, found, site)
            found = [e for e in found if passes_filters(e, query)]
            page = found[query.offset : query.offset + query.limit]
        else:
            page = found[query.offset : query.offset + query.limit]
            self._fill_replicas(client, page, site)
        facets = facet_counts(found) if query.with_facets else {}
        if facets and not read_all:
            del facets["site"]  # only the page's replicas were read: no honest count
        return Page(entries=page, total=len(found) if complete else None, facets=facets)

    # --- copies --------------------------------------------------------------------------
    def rse_expression(self, site: str) -> str:
        """The RSEs of ``site``: the registry's ``rse:`` list, else Rucio's ``site=`` attribute."""
        registry = self._registry()
        entry = registry.get(site) if registry else None
        return "|".join(entry.rses) if entry is not None and entry.rses else f"site={site}"

    async def make_available(self, identifier: str, site: str, query: Query) -> dict[str, Any]:
        from rucio.common.exception import DuplicateRule

        scope, name = parse_did(identifier)
        entry = await self.get(identifier, query)
        if entry is None:
            raise ActionRefused("no such entry")
        registry = self._registry()
        if registry is not None and site not in {s.name for s in registry.for_groups(query.groups)}:
            raise ActionRefused(f"you may not use site {site}")
        expression = self.rse_expression(site)
        account = self.account_for(query.user)

        def work(client: Any) -> dict[str, Any]:
            try:
                rule_id = client.add_replication_rule(
                    [{"scope": scope, "name": name}],
                    1,
                    expression,
                    lifetime=self.rule_lifetime or None,
                    account=account,
                    comment="make available (Continuum Hub catalogue)",
                )[0]
            except DuplicateRule:
                rule_id = next(
                    r["id"]
                    for r in client.list_did_rules(scope, name)
                    if r["account"] == account and r["rse_expression"] == expression
                )
            return client.get_replication_rule(rule_id)

        rule = await self._call(account, work)
        state, message = request_state(rule)
        return {
            "id": f"{rule['id']}:{scope}:{name}",
            "state": state,
            "site": site,
            "message": message,
        }

    async def request_state(self, request_id: str, query: Query) -> dict[str, Any]:
        from rucio.common.exception import RuleNotFound

        rule_id, _, identifier = request_id.partition(":")
        if len(rule_id) != 32 or not all(c in "0123456789abcdef" for c in rule_id):
            raise ActionRefused("not a request of this source")
        scope, name = parse_did(identifier)
        account = self.account_for(query.user)

        def work(client: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
            try:
                rule = client.get_replication_rule(rule_id)
            except RuleNotFound:
                rule = None
            history = (
                [
                    h
                    for h in client.list_replication_rule_full_history(scope, name)
                    if h["rule_id"] == rule_id and h["account"] == account
                ]
                if rule is None
                else []
            )
            return rule, history

        rule, history = await self._call(account, work)
        if rule is not None and rule.get("account") != account:
            raise ActionRefused("not your request")  # rules are readable by all accounts
        state, message = request_state(rule, history)
        return {"id": request_id, "state": state, "site": "", "message": message}

    async def health(self) -> SourceHealth:
        import requests

        started = time.monotonic()
        try:
            answer = await asyncio.to_thread(
                requests.get,
                f"{self.url.rstrip('/')}/ping",
                timeout=min(self.timeout, self.request_timeout),
                verify=(self.ca_cert or True) if self.verify else False,
            )
            answer.raise_for_status()
            version = answer.json().get("version", "?")
        except (OSError, ValueError) as exc:
            return SourceHealth(
                self.name, self.kind, False, message=f"no answer: {type(exc).__name__}"
            )
        latency = (time.monotonic() - started) * 1000
        return SourceHealth(self.name, self.kind, True, latency, f"Rucio {version}")
