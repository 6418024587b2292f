"""Account mapping: which POSIX account a federated identity uses at each site.

:class:`AccountMapper` is the default :class:`~.accounts.AccountResolver` of the hub
(``SiteSpawner.account_resolver_class``) and of the Dask Gateway backend.  Each site of the
registry may say how its accounts are found, in a ``user_accounts`` entry; sites without one
follow :attr:`AccountMapper.default_policy`:

``pattern``
    ``{"policy": "pattern", "pattern": "hub_{username}"}`` — the account is the pattern filled in
    with the hub username (and ``{site}``); the default is ``{username}``.
``map``
    ``{"policy": "map", "file": "/etc/continuum-hub/accounts-alpha.yaml"}`` — a YAML (or JSON)
    mapping of hub username to account; users not listed (or listed as ``null``) have no
    account there.  One file may serve several sites.  The file is read again when it changes;
    a broken edit is logged and the last good version kept.
``pool``
    ``{"policy": "pool", "prefix": "workshop", "first": 1, "last": 40}`` (or
    ``"accounts": [...]``) — a user gets one account of the pool the first time a server starts
    there, and keeps it: the lease is recorded in :attr:`AccountMapper.lease_db` (SQLite, 0600) or
    :attr:`AccountMapper.lease_db_url` (PostgreSQL).
    Leases end only through :meth:`AccountMapper.release`.

Every account is checked to be a POSIX name known to this machine before it is used
(:meth:`~continuum_spawners.accounts.AccountResolver.require`).  Map files and the default
policy are checked at start-up (:func:`check_account_policies`); errors name the file, line
and column.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
from sqlalchemy import (
    REAL,
    Column,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from traitlets import Dict, Float, TraitError, Unicode, validate
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from .accounts import (
    POLICY_SCHEMA,
    POSIX_ACCOUNT,
    AccountPolicy,
    AccountResolver,
    NoAccountError,
    PolicyError,
    build_policy,
)
from .private_file import allocator_lock, create_tables, private_engine
from .registry_schema import position, read_yaml
from .sites import Site, SiteRegistry

DEFAULT_POLICY = AccountPolicy("pattern", pattern="{username}")
#: transactions tried when concurrent sign-ins took the same account (or the same user's lease)
ATTEMPTS = 10

leases = Table(
    "leases",
    MetaData(),
    Column("site", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("since", REAL, nullable=False),
    PrimaryKeyConstraint("site", "account"),
    UniqueConstraint("site", "username"),
)


class AccountMapError(ValueError):
    """A map file is unreadable or invalid; the message starts with ``FILE:LINE:COL:``."""


def load_account_map(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """Read a map file: hub username → account (``None``: no account).

    Raises
    ------
    AccountMapError
        Naming the file, line and column of the first problem.
    """
    path = Path(path)
    text, data = read_yaml(path, AccountMapError, "account map")
    if data is None:
        return {}

    def fail(key: Any, problem: str, at_key: bool = False) -> AccountMapError:
        where = position(path, text, () if key is None else (str(key),), at_key)
        return AccountMapError(f"{where}: {problem}")

    if not isinstance(data, dict):
        raise fail(None, "an account map is a mapping of hub username to account")
    accounts: dict[str, str | None] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise fail(key, f"hub username {key!r} must be a string (quote it)", at_key=True)
        if value is not None and (not isinstance(value, str) or not POSIX_ACCOUNT.match(value)):
            raise fail(key, f"account of {key!r} must be a POSIX account name or null")
        accounts[key] = value
    return accounts


class MapFiles:
    """Map files by path, read again when they change; a broken edit keeps the last good map."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self._maps: dict[str, tuple[float, dict[str, str | None]]] = {}

    def get(self, path: str) -> dict[str, str | None]:
        try:
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            mtime = -1.0
            error: AccountMapError | None = AccountMapError(f"cannot read account map: {exc}")
        else:
            error = None
        cached = self._maps.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        if error is None:
            try:
                self._maps[path] = (mtime, load_account_map(path))
                return self._maps[path][1]
            except AccountMapError as exc:
                error = exc
        outcome = "keeping the last good version" if cached else "nobody has an account there"
        self.log.error("Account map %s: %s; %s", path, error, outcome)
        kept = cached[1] if cached else {}
        self._maps[path] = (mtime, kept)  # log once per change of the file
        return kept


class LeaseStore:
    """Pool leases: one account per (site, user), one user per (site, account).

    In SQLite (the file created 0600; SQLite gives its journal the database's mode) or
    PostgreSQL.  Allocations of one site take turns (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an
    advisory lock, :func:`~.private_file.allocator_lock`), and the table's primary key ``(site,
    account)`` and unique ``(site, username)`` guard the rest: an allocation that still lost a
    race fails to insert, rolls back and is tried again, and then sees the winner's lease.

    Parameters
    ----------
    url
        SQLAlchemy URL of the database, or the path of a SQLite file.
    timeout
        Seconds a SQLite connection waits for another writer's lock.
    """

    def __init__(self, url: str | os.PathLike[str], timeout: float = 10.0) -> None:
        text = os.fspath(url)
        self.url = text if "://" in text else f"sqlite:///{Path(text).absolute()}"
        self.timeout = timeout
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The store's engine (the table is made on first use)."""
        with self._lock:
            if self._engine is None:
                engine = private_engine(self.url, immediate=True, timeout=self.timeout)
                create_tables(engine, leases.metadata)
                self._engine = engine
            return self._engine

    @contextmanager
    def _reading(self, only: bool = True) -> Iterator[Connection]:
        """A connection; ``only`` reading: on SQLite its transactions wait for no writer."""
        with self.engine.connect() as db:
            yield db.execution_options(sqlite_deferred=only)

    def lease(self, site: str, username: str, pool: Iterable[str], allocate: bool) -> str | None:
        """``username``'s account of ``pool`` at ``site``: the one leased before, else the first
        free one (recorded only when ``allocate``); ``None`` when the pool is exhausted."""
        pool = list(pool)
        for attempt in range(ATTEMPTS):
            try:
                # commit, or roll back on error; only an allocation waits for other writers
                with self._reading(not allocate) as db, db.begin():
                    return self._lease(db, site, username, pool, allocate)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311 (spreads retries)
        raise AssertionError("unreachable")

    @staticmethod
    def _lease(
        db: Connection, site: str, username: str, pool: list[str], allocate: bool
    ) -> str | None:
        columns = leases.c
        if allocate:
            allocator_lock(db, f"leases:{site}")
        rows = db.execute(select(columns.account, columns.username).where(columns.site == site))
        taken = {row.account: row.username for row in rows}
        mine = next((a for a, user in taken.items() if user == username), None)
        if mine is not None and mine in pool:
            return mine
        free = next((a for a in pool if a not in taken), None)
        if allocate and free is not None:
            # a lease of an account since removed from the pool is void
            db.execute(delete(leases).where(columns.site == site, columns.username == username))
            db.execute(
                insert(leases).values(site=site, account=free, username=username, since=time.time())
            )
        return free

    def leases(self, site: str) -> dict[str, str]:
        """Hub username → leased account at ``site``."""
        columns = leases.c
        with self._reading() as db:
            rows = db.execute(select(columns.username, columns.account).where(columns.site == site))
            return {row.username: row.account for row in rows}

    def release(self, site: str, username: str) -> str | None:
        """End ``username``'s lease at ``site``; the account it had, if any."""
        columns = leases.c
        with self.engine.begin() as db:
            found = db.execute(
                delete(leases)
                .where(columns.site == site, columns.username == username)
                .returning(columns.account)
            ).scalar()
        return found


class AccountMapper(AccountResolver):
    """Per-site account policies: ``pattern``, ``map`` file, ``pool`` of accounts."""

    default_policy = Dict(
        config=True,
        help="""Policy of sites whose registry entry has no ``user_accounts``.

        Same keys as ``user_accounts``, e.g. ``{"policy": "map", "file": "/etc/continuum-hub/
        accounts.yaml"}`` for one map file for all sites.  Default (empty):
        ``{"policy": "pattern", "pattern": "{username}"}``, the hub username.
        """,
    )

    lease_db = Unicode(
        "continuum_account_leases.sqlite",
        config=True,
        help="""SQLite file recording pool leases (created with mode 0600).

        Relative to the hub's working directory (its state directory, like the default
        ``jupyterhub.sqlite``).  Processes sharing pools (hub, Dask Gateway) must share it.
        """,
    )

    lease_db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the pool leases' database, e.g.
        ``postgresql+psycopg://hub@/continuum?host=/var/run/postgresql`` (table ``leases``).
        Default (empty): the SQLite file ``lease_db``.  Every process sharing pools (hub, Dask
        Gateway, workflows) must name the same database.""",
    )

    lease_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for another process's lease allocation to finish.",
    )

    @validate("default_policy")
    def _validate_default_policy(self, proposal: dict[str, Any]) -> dict[str, Any]:
        value = proposal["value"]
        self._default = policy_from(value, "AccountMapper.default_policy") if value else None
        return value

    def __init__(self, **kwargs: Any) -> None:
        self._default: AccountPolicy | None = None
        super().__init__(**kwargs)
        self.maps = MapFiles(self.log)
        self.store = LeaseStore(self.lease_db_url or self.lease_db, self.lease_timeout)

    def policy(self, site: Site) -> AccountPolicy:
        """The policy that applies at ``site``."""
        return site.user_accounts or self._default or DEFAULT_POLICY

    def resolve(self, username: str, site: Site, allocate: bool) -> str | None:
        policy = self.policy(site)
        if policy.policy == "pattern":
            return policy.pattern.format(username=username, site=site.name)
        if policy.policy == "map":
            assert policy.file is not None
            return self.maps.get(policy.file).get(username)
        account = self.store.lease(site.name, username, policy.accounts, allocate)
        if account is None:
            self.log.warning("Pool of site %s is exhausted (asked by %s)", site.name, username)
            raise NoAccountError(
                f"All {len(policy.accounts)} accounts of {site.label} ({site.name}) for this "
                "hub are in use; ask the hub's operators to free one"
            )
        if allocate:
            self.log.info("%s has account %s of the pool of %s", username, account, site.name)
        return account

    def release(self, site: str, username: str) -> str | None:
        """End ``username``'s pool lease at ``site`` (its account may go to someone else)."""
        return self.store.release(site, username)

    def check(self, registry: SiteRegistry) -> None:
        """Read every map file the registry and the default policy name.

        Raises
        ------
        AccountMapError
            For the first unreadable or invalid file.
        """
        for site in registry:
            policy = self.policy(site)
            if policy.policy == "map":
                assert policy.file is not None
                load_account_map(policy.file)


def policy_from(entry: dict[str, Any], where: str) -> AccountPolicy:
    """:func:`~continuum_spawners.accounts.build_policy` with the schema check; TraitError."""
    errors = list(jsonschema.Draft202012Validator(POLICY_SCHEMA).iter_errors(entry))
    try:
        if errors:
            path = "/".join(str(p) for p in errors[0].absolute_path)
            raise PolicyError(f"{path + ': ' if path else ''}{errors[0].message}")
        return build_policy(entry)
    except PolicyError as exc:
        raise TraitError(f"{where}: {exc}") from None


def check_account_policies(config: Config, registry: SiteRegistry) -> None:
    """At start-up: the configured mapper's default policy and every map file it will read.

    Raises
    ------
    SystemExit
        With the problem (file, line and column for map files).
    """
    # unset: SiteSpawner's default, this module's AccountMapper
    resolver = config.SiteSpawner.get("account_resolver_class", AccountMapper)
    if isinstance(resolver, str):
        resolver = import_item(resolver)
    if not (isinstance(resolver, type) and issubclass(resolver, AccountMapper)):
        return
    try:
        AccountMapper(config=config).check(registry)
    except (AccountMapError, TraitError) as exc:
        raise SystemExit(f"Invalid account mapping: {exc}") from None
