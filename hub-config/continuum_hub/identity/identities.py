"""Stable hub usernames for federated identities: :class:`IdentityStore`.

A person is known to a provider by ``(issuer, sub)``; ``preferred_username`` is only a
suggestion, and two providers may both have an ``alice`` who are different people.  The store
(a small SQLite file, mode 0600) maps every ``(issuer, sub)`` to the hub username allocated at
its first sign-in, and never reuses a username for another identity:

* the sanitized suggestion when no one has it yet, else the suggestion qualified with the
  provider's name (``alice-partner``), then numbered (``alice-partner-2``);
* *linking*: when the provider is trusted for a linking claim (``voperson_id``) and another
  identity recorded by a trusted provider carries the same value, the new identity gets that
  identity's username (unless that username already has another identity at the same issuer);
* a name the provider holds in reserve (its institution's accounts) goes to its person with
  that name before any link, so an earlier sign-in elsewhere never takes it over.

Every allocation runs in one ``BEGIN IMMEDIATE`` transaction, so concurrent first sign-ins
(threads or processes) never hand out one name twice.
"""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from continuum_spawners.private_file import create_private

MAX_LENGTH = 32
MAX_CANDIDATES = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    username TEXT NOT NULL REFERENCES accounts(username),
    provider TEXT NOT NULL,
    link_claim TEXT,
    link_value TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS identities_link ON identities (link_claim, link_value);
"""


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
    path
        The SQLite file (created 0600 with its folder 0700 when missing).
    timeout
        Seconds to wait for another writer's lock.
    """

    def __init__(self, path: Path | str, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._ready = False

    def _prepare(self) -> None:
        if self._ready:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private(self.path)  # never opens an existing file: that drops SQLite's locks
        with closing(sqlite3.connect(self.path, timeout=self.timeout)) as db:
            db.executescript(_SCHEMA)
        self._ready = True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._prepare()
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")  # one allocator at a time, across processes
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def lookup(self, issuer: str, subject: str) -> str | None:
        """The username of ``(issuer, subject)``, or ``None`` when it never signed in."""
        self._prepare()
        with closing(sqlite3.connect(self.path, timeout=self.timeout)) as db:
            row = db.execute(
                "SELECT username FROM identities WHERE issuer = ? AND subject = ?",
                (issuer, subject),
            ).fetchone()
        return row[0] if row else None

    def identities_of(self, username: str) -> list[tuple[str, str, str]]:
        """``(provider, issuer, subject)`` of every identity signed in as ``username``."""
        self._prepare()
        with closing(sqlite3.connect(self.path, timeout=self.timeout)) as db:
            rows = db.execute(
                "SELECT provider, issuer, subject FROM identities WHERE username = ? "
                "ORDER BY created",
                (username,),
            ).fetchall()
        return [tuple(row) for row in rows]

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
        with self._transaction() as db:
            row = db.execute(
                "SELECT username FROM identities WHERE issuer = ? AND subject = ?",
                (issuer, subject),
            ).fetchone()
            if row:
                return Identity(row[0])
            username, linked = None, False
            own = sanitize_username(suggestion)
            if own in reserved and valid(own) and not taken(own) and not self._allocated(db, own):
                username = self._claim(db, own)
            elif link:
                username = self._linked_username(db, issuer, link)
                linked = username is not None
            if username is None:
                username = self._allocate(db, suggestion, provider, valid, taken)
            db.execute(
                "INSERT INTO identities (issuer, subject, username, provider, link_claim, "
                "link_value, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (issuer, subject, username, provider, *(link or (None, None)), time.time()),
            )
            return Identity(username, created=True, linked=linked)

    @staticmethod
    def _linked_username(db: sqlite3.Connection, issuer: str, link: tuple[str, str]) -> str | None:
        if not link[1]:
            return None
        rows = db.execute(
            "SELECT DISTINCT username FROM identities WHERE link_claim = ? AND link_value = ?",
            link,
        ).fetchall()
        if len(rows) != 1:
            return None  # unknown, or ambiguous: never guess who someone is
        username = rows[0][0]
        # A person has one account per issuer: a second subject there is someone else.
        same_issuer = db.execute(
            "SELECT 1 FROM identities WHERE username = ? AND issuer = ?", (username, issuer)
        ).fetchone()
        return None if same_issuer else username

    @staticmethod
    def _allocate(
        db: sqlite3.Connection,
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
    def _allocated(db: sqlite3.Connection, name: str) -> bool:
        return (
            db.execute("SELECT 1 FROM accounts WHERE username = ?", (name,)).fetchone() is not None
        )

    @staticmethod
    def _claim(db: sqlite3.Connection, name: str) -> str:
        db.execute("INSERT INTO accounts VALUES (?, ?)", (name, time.time()))
        return name
