"""Stable hub usernames for federated identities: :class:`IdentityStore`.

A person is known to a provider by ``(issuer, sub)``; ``preferred_username`` is only a
suggestion, and two providers may both have an ``alice`` who are different people.  The store
(a small SQLite file, mode 0600, or a PostgreSQL database) maps every ``(issuer, sub)`` to the
hub username allocated at its first sign-in, and never reuses a username for another identity:

* the sanitized suggestion when no one has it yet, else the suggestion qualified with the
  provider's name (``alice-partner``), then numbered (``alice-partner-2``);
* *linking*: when the provider is trusted for a linking claim (``voperson_id``) and another
  identity recorded by a trusted provider carries the same value, the new identity gets that
  identity's username (unless that username already has another identity at the same issuer);
* a name the provider holds in reserve (its institution's accounts) goes to its person with
  that name before any link, so an earlier sign-in elsewhere never takes it over.

Every allocation runs in one transaction: on SQLite it starts ``BEGIN IMMEDIATE`` (one
allocator at a time across processes), on PostgreSQL it takes an advisory lock
(:func:`~continuum_spawners.private_file.allocator_lock`); the primary keys of both tables
refuse a second holder of a name or an identity all the same, and a transaction that lost a
race is tried again (it then sees the winner's row).  Concurrent first sign-ins (threads,
processes, hub restarts) never hand out one name twice.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    REAL,
    Column,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from continuum_spawners.private_file import (
    allocator_lock,
    create_tables,
    private_engine,
    sqlite_path,
)

MAX_LENGTH = 32
MAX_CANDIDATES = 1000
#: transactions tried when a concurrent sign-in took the same name (PostgreSQL)
ATTEMPTS = 20

metadata = MetaData()
accounts = Table(
    "accounts",
    metadata,
    Column("username", Text, primary_key=True),
    Column("created", REAL, nullable=False),
)
identities = Table(
    "identities",
    metadata,
    Column("issuer", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("link_claim", Text),
    Column("link_value", Text),
    Column("created", REAL, nullable=False),
    PrimaryKeyConstraint("issuer", "subject"),
    Index("identities_link", "link_claim", "link_value"),
)


class IdentityError(RuntimeError):
    """No username could be allocated (the message says why)."""


@dataclass(frozen=True)
class Identity:
    """The result of :meth:`IdentityStore.resolve`.

    Attributes
    ----------
    username
        The hub username of the identity.
    created
        Whether this sign-in recorded the identity (its first).
    linked
        Whether the username was taken over from a linked identity.
    """

    username: str
    created: bool = False
    linked: bool = False


def sanitize_username(suggestion: str) -> str:
    """A POSIX-style account name made from a claim value (``Alice.Smith@x`` → ``alice-smith``).

    Lowercase ASCII letters, digits, ``_`` and ``-``, starting with a letter or ``_``, at most
    :data:`MAX_LENGTH` characters; ``user`` when nothing usable is left.
    """
    text = unicodedata.normalize("NFKD", str(suggestion)).encode("ascii", "ignore").decode()
    text = text.split("@", 1)[0].lower()  # eppn-style values: the local part
    text = re.sub(r"[^a-z0-9_-]+", "-", text).strip("-")
    if not text:
        return "user"
    if not re.match(r"[a-z_]", text):
        text = f"u{text}"
    return text[:MAX_LENGTH].rstrip("-") or "user"


def candidate_usernames(suggestion: str, provider: str) -> Iterator[str]:
    """Usernames to try, in order: ``alice``, ``alice-<provider>``, ``alice-<provider>-2``, …"""
    base = sanitize_username(suggestion)
    yield base
    for number in range(1, MAX_CANDIDATES):
        suffix = f"-{provider}" if number == 1 else f"-{provider}-{number}"
        yield base[: MAX_LENGTH - len(suffix)].rstrip("-") + suffix


class IdentityStore:
    """The persistent map ``(issuer, sub)`` → hub username.

    Parameters
    ----------
    url
        SQLAlchemy URL of its database (``sqlite:///…``, ``postgresql+psycopg://…``), or the
        path of a SQLite file; a SQLite file is created 0600 with its folder 0700 when missing.
    timeout
        Seconds to wait for another writer's lock (SQLite).
    """

    def __init__(self, url: Path | str, timeout: float = 10.0) -> None:
        self.url = str(url) if "://" in str(url) else f"sqlite:///{Path(url).absolute()}"
        self.timeout = timeout
        #: the SQLite file, ``None`` on other databases
        self.path = sqlite_path(self.url)
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The store's engine; its tables are made on first use."""
        with self._lock:  # threads' first sign-ins at once: one engine
            if self._engine is None:
                engine = private_engine(self.url, immediate=True, timeout=self.timeout)
                create_tables(engine, metadata)
                self._engine = engine
            return self._engine

    def _allocating(self, allocate: Callable[[Connection], Any]) -> Any:
        """``allocate(db)`` in one transaction, tried again when a concurrent one inserted the
        same key first (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already runs them one by one)."""
        for attempt in range(ATTEMPTS):
            try:
                with self.engine.begin() as db:
                    return allocate(db)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def lookup(self, issuer: str, subject: str) -> str | None:
        """The username of ``(issuer, subject)``, or ``None`` when it never signed in."""
        query = select(identities.c.username).where(
            identities.c.issuer == issuer, identities.c.subject == subject
        )
        with self.engine.connect().execution_options(sqlite_deferred=True) as db:
            return db.execute(query).scalar()

    def identities_of(self, username: str) -> list[tuple[str, str, str]]:
        """``(provider, issuer, subject)`` of every identity signed in as ``username``."""
        columns = identities.c
        query = (
            select(columns.provider, columns.issuer, columns.subject)
            .where(columns.username == username)
            .order_by(columns.created)
        )
        with self.engine.connect().execution_options(sqlite_deferred=True) as db:
            return [(row[0], row[1], row[2]) for row in db.execute(query)]

    def resolve(
        self,
        issuer: str,
        subject: str,
        *,
        provider: str,
        suggestion: str,
        link: tuple[str, str] | None = None,
        valid: Callable[[str], bool] = lambda name: True,
        taken: Callable[[str], bool] = lambda name: False,
        reserved: Collection[str] = (),
    ) -> Identity:
        """The username of ``(issuer, subject)``, allocated at its first sign-in.

        Parameters
        ----------
        issuer, subject
            The identity (``iss`` and ``sub`` of a validated ID token).
        provider
            The provider's short name (qualifies taken names).
        suggestion
            The provider's ``preferred_username`` (or configured claim).
        link
            ``(claim, value)`` when the provider is trusted for that linking claim.
        valid
            Whether a candidate name is acceptable (the hub's username pattern).
        taken
            Whether a name not in the store is in use elsewhere (hub users that predate it).
        reserved
            Names this provider holds: its person suggesting one gets it, link or not.

        Raises
        ------
        IdentityError
            When the identity has no subject or no candidate name is free and valid.
        """
        if not issuer or not subject:
            raise IdentityError("an identity needs an issuer and a subject")

        def allocate(db: Connection) -> Identity:
            allocator_lock(db, "identities")
            found = db.execute(
                select(identities.c.username).where(
                    identities.c.issuer == issuer, identities.c.subject == subject
                )
            ).scalar()
            if found is not None:
                return Identity(found)
            username, linked = None, False
            own = sanitize_username(suggestion)
            if own in reserved and valid(own) and not taken(own) and not self._allocated(db, own):
                username = self._claim(db, own)
            elif link:
                username = self._linked_username(db, issuer, link)
                linked = username is not None
            if username is None:
                username = self._allocate(db, suggestion, provider, valid, taken)
            claim, value = link or (None, None)
            db.execute(
                insert(identities).values(
                    issuer=issuer,
                    subject=subject,
                    username=username,
                    provider=provider,
                    link_claim=claim,
                    link_value=value,
                    created=time.time(),
                )
            )
            return Identity(username, created=True, linked=linked)

        result: Identity = self._allocating(allocate)
        return result

    @staticmethod
    def _linked_username(db: Connection, issuer: str, link: tuple[str, str]) -> str | None:
        if not link[1]:
            return None
        columns = identities.c
        names = db.execute(
            select(columns.username)
            .distinct()
            .where(columns.link_claim == link[0], columns.link_value == link[1])
        ).all()
        if len(names) != 1:
            return None  # unknown, or ambiguous: never guess who someone is
        username = names[0][0]
        # A person has one account per issuer: a second subject there is someone else.
        same_issuer = db.execute(
            select(columns.subject).where(columns.username == username, columns.issuer == issuer)
        ).first()
        return None if same_issuer else username

    @staticmethod
    def _allocate(
        db: Connection,
        suggestion: str,
        provider: str,
        valid: Callable[[str], bool],
        taken: Callable[[str], bool],
    ) -> str:
        for name in candidate_usernames(suggestion, provider):
            if valid(name) and not taken(name) and not IdentityStore._allocated(db, name):
                return IdentityStore._claim(db, name)
        raise IdentityError(f"no free valid username for {suggestion!r} at {provider}")

    @staticmethod
    def _allocated(db: Connection, name: str) -> bool:
        query = select(accounts.c.username).where(accounts.c.username == name)
        return db.execute(query).first() is not None

    @staticmethod
    def _claim(db: Connection, name: str) -> str:
        db.execute(insert(accounts).values(username=name, created=time.time()))
        return name
