"""The local federation's OpenID provider: a real, certified one, run as a child process.

:class:`OpenIDProvider` writes the configuration of ``images/idp/server.mjs`` (npm
``oidc-provider`` set up like an AAI proxy such as EGI Check-in) and supervises ``node`` running
it on 127.0.0.1.  Signing and cookie keys persist in the state folder; sessions, grants and tokens
live in the provider's memory only.

:data:`DEMO_USERS` are the demo and test users (without passwords), with AARC-G069 entitlements
for the two demo VOs and the admin group.  :data:`PARTNER_USERS` are the users of the second
provider (a partner institution's proxy, its own entitlement namespace): another ``alice``,
Bob under another login (linked to ``bob`` by ``voperson_id``), ``erin`` and ``mallory`` (who
claims the admin group in the first provider's namespace, which the hub must not believe).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from .process import ManagedProcess, ProcessError, Service, free_port

__all__ = [
    "ADMIN_GROUP",
    "DEMO_USERS",
    "ENTITLEMENT_AUTHORITY",
    "ENTITLEMENT_NAMESPACE",
    "PARTNER_AUTHORITY",
    "PARTNER_NAMESPACE",
    "PARTNER_USERS",
    "VO_HEP",
    "VO_RADIO",
    "OpenIDProvider",
    "entitlement",
    "hub_client",
    "make_password",
    "partner_entitlement",
    "with_passwords",
]

ENTITLEMENT_NAMESPACE = "urn:mace:continuum.example"
ENTITLEMENT_AUTHORITY = "idp.continuum.example"
VO_HEP = "vo.hep.example"
VO_RADIO = "vo.radio.example"
ADMIN_GROUP = "continuum-admins"
PARTNER_NAMESPACE = "urn:mace:partner.example"
PARTNER_AUTHORITY = "proxy.partner.example"

SERVER_SCRIPT = Path("images") / "idp" / "server.mjs"


def entitlement(
    group: str,
    role: str = "member",
    namespace: str = ENTITLEMENT_NAMESPACE,
    authority: str = ENTITLEMENT_AUTHORITY,
) -> str:
    """The AARC-G069 entitlement a demo provider issues for ``group`` and ``role``.

    Examples
    --------
    >>> entitlement("vo.hep.example")
    'urn:mace:continuum.example:group:vo.hep.example:role=member#idp.continuum.example'
    """
    return f"{namespace}:group:{group}:role={role}#{authority}"


def partner_entitlement(group: str, role: str = "member") -> str:
    """The entitlement the partner provider issues (its own namespace and authority)."""
    return entitlement(group, role, PARTNER_NAMESPACE, PARTNER_AUTHORITY)


DEMO_USERS: tuple[Mapping[str, Any], ...] = (
    {
        "username": "alice",
        "name": "Alice Adams",
        "email": "alice@continuum.example",
        "voperson_id": "alice@id.continuum.example",
        "entitlements": [entitlement(VO_HEP), entitlement(VO_RADIO)],
    },
    {
        "username": "bob",
        "name": "Bob Brown",
        "email": "bob@continuum.example",
        "voperson_id": "bob@id.continuum.example",
        "entitlements": [entitlement(VO_HEP)],
    },
    {
        "username": "carol",
        "name": "Carol Clark",
        "email": "carol@continuum.example",
        "voperson_id": "carol@id.continuum.example",
        "entitlements": [],
    },
    {
        "username": "dave",
        "name": "Dave Davis",
        "email": "dave@continuum.example",
        "voperson_id": "dave@id.continuum.example",
        "entitlements": [entitlement(ADMIN_GROUP), entitlement(VO_RADIO)],
    },
)
"""Demo users without passwords: alice (both VOs), bob (HEP), carol (none), dave (admin, radio)."""

PARTNER_USERS: tuple[Mapping[str, Any], ...] = (
    {
        "username": "alice",
        "name": "Alice Andersen",
        "email": "alice@partner.example",
        "voperson_id": "alice.andersen@partner.example",
        "entitlements": [partner_entitlement(VO_HEP)],
    },
    {
        "username": "bbrown",
        "name": "Bob Brown",
        "email": "bob.brown@partner.example",
        "voperson_id": "bob@id.continuum.example",
        "entitlements": [partner_entitlement(VO_HEP)],
    },
    {
        "username": "erin",
        "name": "Erin Evans",
        "email": "erin@partner.example",
        "voperson_id": "erin@partner.example",
        "entitlements": [partner_entitlement(VO_RADIO)],
    },
    {
        "username": "mallory",
        "name": "Mallory Moore",
        "email": "mallory@partner.example",
        "voperson_id": "mallory@partner.example",
        "entitlements": [entitlement(ADMIN_GROUP), partner_entitlement(VO_HEP)],
    },
)
"""Partner users: another alice (HEP; hub user ``alice-partner``), bbrown (Bob, linked to ``bob``),
erin (radio), mallory (HEP, and a forged admin entitlement in the first provider's namespace)."""


def hub_client(
    hub_port: int,
    secret: str,
    client_id: str = "continuum-hub",
    callback_path: str = "oauth_callback",
) -> dict[str, Any]:
    """Client metadata of a hub on ``hub_port``: confidential, code flow, refresh tokens.

    ``callback_path`` is the redirect URI below ``/hub/``: ``oauth_callback`` for the hub's
    primary provider, ``oauth_callback/<name>`` for its others.
    """
    return {
        "client_id": client_id,
        "client_secret": secret,
        "client_name": "Continuum Hub",
        "redirect_uris": [f"http://127.0.0.1:{hub_port}/hub/{callback_path}"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }


def make_password() -> str:
    """A random password for a demo or test user (URL-safe, 24 characters)."""
    return secrets.token_urlsafe(18)


def with_passwords(
    users: Sequence[Mapping[str, Any]] = DEMO_USERS,
    passwords: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Copies of ``users`` with a ``password`` each: from ``passwords`` or freshly made.

    Parameters
    ----------
    users
        User definitions without passwords, :data:`DEMO_USERS` by default.
    passwords
        Passwords by username; users not named here get :func:`make_password`.
    """
    passwords = passwords or {}
    return [
        {
            **user,
            "entitlements": list(user.get("entitlements", ())),
            "password": passwords.get(user["username"]) or make_password(),
        }
        for user in users
    ]


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, also when it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


class OpenIDProvider(Service):
    """The demo/test OpenID provider, ``node images/idp/server.mjs``, on 127.0.0.1.

    Parameters
    ----------
    state_dir
        Folder for the configuration file, the persistent keys and the log ``<name>.log``;
        created with mode 0700.  Reusing it keeps the signing keys (and the ``kid``).
    repo_root
        The checkout's root, with ``node_modules`` installed by ``npm ci``.
    port
        TCP port on 127.0.0.1; a free one is picked when omitted.
    users
        Users as ``{username, password, name, email, entitlements}`` mappings.
    clients
        oidc-provider client metadata (``client_id``, ``client_secret``, ``redirect_uris``,
        ``grant_types``, ``response_types``, ``token_endpoint_auth_method``).  The first one is
        the *primary* client that :attr:`client_id` and friends describe.
    ttl
        Lifetimes in seconds by artifact (``AccessToken``, ``IdToken``, ``RefreshToken``,
        ``Grant``, ``Session``, ``Interaction``, ``AuthorizationCode``); the provider's defaults
        (1 h, 1 h, 14 d, …) apply to those left out.
    name
        Name of the process in messages and of its log file.
    display_name
        The provider's name on its login page (default: the demo provider's).
    node
        The Node.js executable.

    Examples
    --------
    >>> with OpenIDProvider(state, repo, users=users, clients=clients) as idp:  # doctest: +SKIP
    ...     idp.metadata()["token_endpoint"]
    """

    def __init__(
        self,
        state_dir: Path,
        repo_root: Path,
        *,
        port: int | None = None,
        users: Sequence[Mapping[str, Any]],
        clients: Sequence[Mapping[str, Any]],
        ttl: Mapping[str, int] | None = None,
        name: str = "idp",
        display_name: str | None = None,
        node: str = "node",
    ) -> None:
        if not clients:
            raise ValueError("the provider needs at least one client")
        self.state_dir = Path(state_dir)
        self.repo_root = Path(repo_root)
        self.port = port if port is not None else free_port()
        self.users = [dict(user) for user in users]
        self.clients = [dict(client) for client in clients]
        self.ttl = dict(ttl or {})
        self.name = name
        self.display_name = display_name
        self.node = node
        self.config_path = self.state_dir / f"{name}-config.json"
        self._process: ManagedProcess | None = None
        self._metadata: dict[str, Any] | None = None

    @property
    def issuer(self) -> str:
        """The issuer identifier, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        """URL of the OpenID Connect discovery document."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def log_path(self) -> Path:
        """The provider's log file."""
        return self.state_dir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        """Whether the provider's process is alive."""
        return self._process is not None and self._process.running

    @property
    def passwords(self) -> dict[str, str]:
        """Passwords by username."""
        return {user["username"]: user["password"] for user in self.users}

    @property
    def client_id(self) -> str:
        """The primary client's ID."""
        return str(self.clients[0]["client_id"])

    @property
    def client_secret(self) -> str:
        """The primary client's secret."""
        return str(self.clients[0]["client_secret"])

    @property
    def redirect_uri(self) -> str:
        """The primary client's first redirect URI."""
        return str(self.clients[0]["redirect_uris"][0])

    def user(self, username: str) -> dict[str, Any]:
        """The definition of ``username`` (a copy)."""
        for user in self.users:
            if user["username"] == username:
                return dict(user)
        raise KeyError(username)

    def _config(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "host": "127.0.0.1",
            "port": self.port,
            "state_dir": str(self.state_dir),
            "clients": self.clients,
            "users": self.users,
            "ttl": self.ttl,
            **({"display_name": self.display_name} if self.display_name else {}),
        }

    def _fetch_metadata(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The discovery document, or ``None`` while it does not answer 200."""
        try:
            with urllib.request.urlopen(self.discovery_url, timeout=timeout) as response:  # noqa: S310 - fixed http URL on 127.0.0.1
                if response.status != 200:
                    return None
                return dict(json.load(response))
        except (OSError, ValueError):
            return None

    def _ready(self) -> bool:
        metadata = self._fetch_metadata()
        # The issuer check guards against answering for some other server on a reused port.
        if metadata is None or metadata.get("issuer") != self.issuer:
            return False
        self._metadata = metadata
        return True

    def start(self, timeout: float = 60.0) -> Self:
        """Write the configuration, start ``node`` and wait for the discovery document.

        Raises
        ------
        ProcessError
            When the dependencies are not installed, or the provider dies or is not ready
            within ``timeout`` seconds (the message quotes the log's tail).
        """
        if self.running:
            return self
        script = self.repo_root / SERVER_SCRIPT
        if not (self.repo_root / "node_modules" / "oidc-provider").is_dir():
            raise ProcessError(f"oidc-provider is not installed: run `npm ci` in {self.repo_root}")
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        _write_private(self.config_path, json.dumps(self._config(), indent=2))
        self._metadata = None
        process = ManagedProcess(
            self.name,
            [self.node, str(script), str(self.config_path)],
            log_dir=self.state_dir,
            cwd=self.repo_root,
        )
        self._process = process.start()
        try:
            process.wait_ready(self._ready, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the provider (its keys stay in the state folder, its configuration is removed)."""
        if self._process is not None:
            self._process.stop()
            self._process = None
        # The configuration holds the client secrets and passwords.
        with contextlib.suppress(FileNotFoundError):
            self.config_path.unlink()

    def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched once per start).

        Raises
        ------
        ProcessError
            When the provider does not answer.
        """
        if self._metadata is None and not self._ready():
            raise ProcessError(f"{self.name} does not answer at {self.discovery_url}")
        assert self._metadata is not None
        return dict(self._metadata)

    def reload_users(self, users: Sequence[Mapping[str, Any]]) -> None:
        """Replace the users of the running provider (``SIGHUP``; added for living tokens).

        Their claims change from the next userinfo answer on; sessions and grants stay, so a
        test can take an entitlement away from a signed-in user.  The provider logs
        ``SIGHUP: re-read N users`` when done.
        """
        if self._process is None or self._process.proc is None or not self.running:
            raise ProcessError(f"{self.name} is not running")
        self.users = [dict(user) for user in users]
        _write_private(self.config_path, json.dumps(self._config(), indent=2))
        self._process.proc.send_signal(signal.SIGHUP)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<OpenIDProvider {self.issuer} ({state})>"
