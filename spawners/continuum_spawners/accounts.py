"""Which POSIX account a hub user's commands and jobs run as at a site.

A hub username is an identity of the federation (one per issuer and subject); a site runs jobs
under its own POSIX accounts.  An :class:`AccountResolver` maps one to the other, per site:

* :meth:`AccountResolver.account_for` — the account, or ``None`` where the user has none;
* :meth:`AccountResolver.require` — the account, or :class:`NoAccountError` with a message for
  people ("You have no account at Alpha HPC centre (alpha)");
* :meth:`AccountResolver.unavailable` — for the spawn form and option checks: which of a user's
  sites they have no account at, and why, without taking anything (a pool lease) on the way.

Every account that comes back has been checked to be a POSIX account name and to exist in this
machine's user database as a person's account, not a system one (:func:`regular_uids`), because
it is handed to ``sudo -u`` / ``ssh -l`` and its home directory becomes the job's working
directory.

This base class is the classic behaviour: the account is the hub username.  The configurable
mapping (``pattern``, ``map`` file, ``pool`` of accounts), and the default of the spawner and
the gateway, is :class:`continuum_spawners.account_map.AccountMapper`; a site whose registry
entry sets ``user_accounts`` is refused here rather than silently run as the hub username.  The
registry's ``user_accounts`` entries are parsed by :func:`build_policy` into
:class:`AccountPolicy`.
"""

from __future__ import annotations

import copy
import functools
import pwd
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets.config import Config, LoggingConfigurable

if TYPE_CHECKING:
    from .sites import Site

#: what ``useradd`` accepts by default (Debian's NAME_REGEX, 32 characters at most)
POSIX_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
#: where the range of people's (non-system) uids is configured
LOGIN_DEFS = "/etc/login.defs"
POLICIES = ("pattern", "map", "pool")
PATTERN_FIELDS = frozenset({"username", "site"})
_LITERAL = re.compile(r"^[a-z0-9_-]*$")

#: JSON schema of one ``user_accounts`` entry (site registry, ``AccountMapper.default_policy``);
#: which fields each policy needs is checked by :func:`build_policy`
POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["policy"],
    "properties": {
        "policy": {"enum": list(POLICIES)},
        "pattern": {"type": "string", "minLength": 1, "maxLength": 64},
        "file": {"type": "string", "pattern": r"^/[A-Za-z0-9._@+/-]+$"},
        "accounts": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": POSIX_ACCOUNT.pattern},
        },
        "prefix": {"type": "string", "pattern": r"^[a-z_][a-z0-9_-]{0,26}$"},
        "first": {"type": "integer", "minimum": 0, "maximum": 99999},
        "last": {"type": "integer", "minimum": 0, "maximum": 99999},
    },
}

_NEEDS = {"pattern": ("pattern",), "map": ("file",), "pool": ()}
_POOL_FIELDS = ("accounts", "prefix", "first", "last")


class NoAccountError(PermissionError):
    """The user has no account at a site; ``str()`` is the message to show them (HTTP 403)."""

    status = 403


class PolicyError(ValueError):
    """A ``user_accounts`` entry is inconsistent; ``field`` names the offending key, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AccountPolicy:
    """How a site's accounts are found for hub users (a ``user_accounts`` registry entry).

    Attributes
    ----------
    policy
        ``pattern``: the account is ``pattern`` filled in with ``{username}`` (and ``{site}``);
        ``map``: looked up in the YAML/JSON ``file`` (hub username → account);
        ``pool``: a stable lease of one of ``accounts``, recorded by the hub.
    """

    policy: str
    pattern: str = "{username}"
    file: str | None = None
    accounts: tuple[str, ...] = ()


def no_account_message(site: Site) -> str:
    """What a user with no account at ``site`` is told."""
    return f"You have no account at {site.label} ({site.name})"


def check_pattern(pattern: str) -> None:
    """Refuse a pattern with unknown fields, format specs or characters no account may hold."""
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise PolicyError(f"pattern {pattern!r}: {exc}", "pattern") from None
    fields = set()
    for literal, name, spec, conversion in parts:
        if not _LITERAL.match(literal):
            raise PolicyError(
                f"pattern {pattern!r}: only lowercase letters, digits, '_' and '-' besides "
                "{username} and {site}",
                "pattern",
            )
        if name is None:
            continue
        if name not in PATTERN_FIELDS or spec or conversion:
            raise PolicyError(
                f"pattern {pattern!r}: {{{name}}} is not one of {{username}}, {{site}}", "pattern"
            )
        fields.add(name)
    if "username" not in fields:
        # without it every user would share one account: that is what a pool is for
        raise PolicyError(f"pattern {pattern!r} must contain {{username}}", "pattern")


def build_policy(entry: Mapping[str, Any]) -> AccountPolicy:
    """An :class:`AccountPolicy` from a ``user_accounts`` entry valid under
    :data:`POLICY_SCHEMA`, with the cross-field checks the schema leaves out.

    Pools are written as ``accounts: [...]`` or as ``prefix`` + ``first`` + ``last``
    (``workshop``, 1, 40 → ``workshop01`` … ``workshop40``, zero-padded to ``last``'s digits).
    """
    policy = entry["policy"]
    stray = next(
        (
            key
            for key in entry
            if key != "policy"
            and key not in _NEEDS[policy]
            and not (policy == "pool" and key in _POOL_FIELDS)
        ),
        None,
    )
    if stray is not None:
        raise PolicyError(f"{stray} does not apply to policy {policy}", stray)
    missing = next((key for key in _NEEDS[policy] if key not in entry), None)
    if missing is not None:
        raise PolicyError(f"policy {policy} needs {missing}")
    if policy == "pattern":
        check_pattern(entry["pattern"])
        return AccountPolicy("pattern", pattern=entry["pattern"])
    if policy == "map":
        return AccountPolicy("map", file=entry["file"])
    return AccountPolicy("pool", accounts=_pool_accounts(entry))


def _pool_accounts(entry: Mapping[str, Any]) -> tuple[str, ...]:
    if "accounts" in entry:
        if any(key in entry for key in ("prefix", "first", "last")):
            raise PolicyError("a pool is either accounts or prefix/first/last", "accounts")
        return tuple(entry["accounts"])
    if "prefix" not in entry or "last" not in entry:
        raise PolicyError("policy pool needs accounts, or prefix and last (and first)")
    first, last = entry.get("first", 1), entry["last"]
    if first > last:
        raise PolicyError(f"first ({first}) is after last ({last})", "first")
    width = len(str(last))
    names = tuple(f"{entry['prefix']}{n:0{width}d}" for n in range(first, last + 1))
    if any(not POSIX_ACCOUNT.match(name) for name in names):
        raise PolicyError(f"{names[-1]!r} is longer than 32 characters", "prefix")
    return names


def passwd_entry(account: str) -> pwd.struct_passwd | None:
    """``account``'s entry in this machine's user database, or ``None``."""
    try:
        return pwd.getpwnam(account)
    except KeyError:
        return None


@functools.cache
def regular_uids(login_defs: str = LOGIN_DEFS) -> range:
    """The uids of people's accounts: ``UID_MIN``–``UID_MAX`` of ``login.defs`` (1000–60000
    where unset).  Every other account (``root``, ``slurm``, ``munge``, ``nobody``, …) is a
    system account, which no hub user's jobs may run as, whatever the mapping says."""
    limits = {"UID_MIN": 1000, "UID_MAX": 60000}
    try:
        lines = Path(login_defs).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] in limits and parts[1].isdigit():
            limits[parts[0]] = int(parts[1])
    return range(limits["UID_MIN"], limits["UID_MAX"] + 1)


def checked_passwd(account: str) -> pwd.struct_passwd:
    """``account``'s entry in this machine's user database; :class:`NoAccountError` if none,
    or if it is a system account (see :func:`regular_uids`)."""
    entry = passwd_entry(account) if POSIX_ACCOUNT.match(account) else None
    if entry is None:
        raise NoAccountError(f"the account {account[:40]!r} does not exist (any more)")
    if entry.pw_uid not in regular_uids():
        raise NoAccountError(f"the account {account!r} is a system account")
    return entry


class AccountResolver(LoggingConfigurable):
    """Hub username → POSIX account per site.  This base: the account is the hub username.

    Subclasses override :meth:`resolve` only; the checks (POSIX name, known to this machine)
    and the messages are common.
    """

    def resolve(self, username: str, site: Site, allocate: bool) -> str | None:
        """The account of ``username`` at ``site``, or ``None`` where there is none.

        Parameters
        ----------
        allocate
            ``True`` when the account is about to be used (a job is submitted): a policy that
            hands out accounts may record one.  ``False`` (form, checks, estimates): take
            nothing, answer with what the user has or would get.

        Raises
        ------
        NoAccountError
            Where a more specific message than :func:`no_account_message` helps (a full pool).
        """
        if site.user_accounts is not None:
            self.log.error(
                "Site %s sets user_accounts, which %s does not implement: use "
                "continuum_spawners.account_map.AccountMapper (the default) or a subclass",
                site.name,
                type(self).__name__,
            )
            return None
        return username

    def require(self, username: str, site: Site, *, allocate: bool = True) -> str:
        """The checked account of ``username`` at ``site``.

        Raises
        ------
        NoAccountError
            With the message for the user when there is no usable account.
        """
        account = self.resolve(username, site, allocate)
        if account is None:
            raise NoAccountError(no_account_message(site))
        if not POSIX_ACCOUNT.match(account):
            self.log.warning(
                "Account %r of %s at site %s is not a POSIX account name: refused",
                account[:40],
                username,
                site.name,
            )
            raise NoAccountError(no_account_message(site))
        entry = passwd_entry(account)
        if entry is None:
            # routine for a pattern over users without an account there: not worth a warning
            self.log.debug(
                "Account %s of %s at site %s does not exist on this machine",
                account,
                username,
                site.name,
            )
            raise NoAccountError(no_account_message(site))
        if entry.pw_uid not in regular_uids():
            # e.g. a person whose login at their identity provider is "root"
            self.log.warning(
                "Account %s of %s at site %s is a system account (uid %d): refused",
                account,
                username,
                site.name,
                entry.pw_uid,
            )
            raise NoAccountError(no_account_message(site))
        return account

    def account_for(self, username: str, site: Site, *, allocate: bool = True) -> str | None:
        """The checked account of ``username`` at ``site``, or ``None`` where there is none."""
        try:
            return self.require(username, site, allocate=allocate)
        except NoAccountError:
            return None

    def unavailable(self, username: str, sites: Iterable[Site]) -> dict[str, str]:
        """Site name → message, for those of ``sites`` where ``username`` has no account."""
        refused = {}
        for site in sites:
            try:
                self.require(username, site, allocate=False)
            except NoAccountError as exc:
                refused[site.name] = str(exc)
        return refused


_shared: dict[type, tuple[Config, AccountResolver]] = {}


def shared_resolver(cls: type[AccountResolver], config: Config, **kwargs: Any) -> AccountResolver:
    """One resolver of class ``cls`` per hub process (caches and leases are hub-wide), made
    anew when the configuration changes."""
    cached = _shared.get(cls)
    if cached is None or cached[0] != config:
        cached = (copy.deepcopy(config), cls(config=config, **kwargs))
        _shared[cls] = cached
    return cached[1]
