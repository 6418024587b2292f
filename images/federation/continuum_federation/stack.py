"""The whole local federation in one object: munge, two Slurm sites, two OpenID providers
(the home proxy and a partner institution's, with different issuers), the hub.

Used by the demo (:mod:`.cli`); the test suite starts the same pieces through its fixtures.
State (keys, passwords, the hub database) persists in ``state_dir`` so a second start is quick
and logins stay the same.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .accounts import ensure_unix_user
from .hub import (
    PARTNER_PROVIDER,
    LocalHub,
    provider_settings,
    read_or_create_secret,
    write_private_json,
)
from .idp import DEMO_USERS, PARTNER_USERS, OpenIDProvider, hub_client, make_password
from .munge import MungeDaemon
from .process import Service, free_port
from .slurm import LocalSlurmCluster, load_cluster_specs

CLIENT_ID = "continuum-hub"
PARTNER_CALLBACK = f"oauth_callback/{PARTNER_PROVIDER}"


@dataclass
class Federation(Service):
    """Start and stop the local federation.

    Parameters
    ----------
    repo_root
        The checkout.
    state_dir
        Persistent state of this federation (created 0755 so jobs reach the munge socket).
    hub_port, idp_port, partner_port
        Fixed ports (the demo's defaults); free ones when ``None``.
    """

    repo_root: Path
    state_dir: Path
    hub_port: int | None = 8000
    idp_port: int | None = 5556
    partner_port: int | None = 5557
    munge: MungeDaemon | None = None
    sites: dict[str, LocalSlurmCluster] = field(default_factory=dict)
    idp: OpenIDProvider | None = None
    partner: OpenIDProvider | None = None
    hub: LocalHub | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    partner_passwords: dict[str, str] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def _passwords(
        self, file: str = "demo-passwords.json", users: Sequence[Mapping[str, Any]] = DEMO_USERS
    ) -> dict[str, str]:
        path = self.state_dir / file
        known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for user in users:
            known.setdefault(user["username"], make_password())
        write_private_json(path, known)
        return known

    def start(self) -> Federation:
        """Start every piece, stopping what already started if one fails."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o755)
        try:
            for user in DEMO_USERS:
                ensure_unix_user(user["username"])
            self.passwords = self._passwords()
            self.partner_passwords = self._passwords("partner-passwords.json", PARTNER_USERS)
            self.munge = self._stack.enter_context(MungeDaemon(self.state_dir / "munge"))
            specs = load_cluster_specs(self.repo_root / "images" / "slurm" / "clusters.yaml")
            for name, spec in specs.items():
                cluster = LocalSlurmCluster(name, spec, self.state_dir / "slurm", self.munge.socket)
                self.sites[name] = self._stack.enter_context(cluster)
            secret = read_or_create_secret(self.state_dir / "hub" / "client_secret")
            hub_port = self.hub_port or free_port()
            users: list[dict[str, Any]] = [
                {**user, "password": self.passwords[user["username"]]} for user in DEMO_USERS
            ]
            self.idp = self._stack.enter_context(
                OpenIDProvider(
                    self.state_dir / "idp",
                    self.repo_root,
                    port=self.idp_port,
                    users=users,
                    clients=[hub_client(hub_port, secret, CLIENT_ID)],
                )
            )
            partner_secret = read_or_create_secret(self.state_dir / "hub" / "partner_secret")
            self.partner = self._stack.enter_context(
                OpenIDProvider(
                    self.state_dir / "partner-idp",
                    self.repo_root,
                    port=self.partner_port,
                    users=[
                        {**user, "password": self.partner_passwords[user["username"]]}
                        for user in PARTNER_USERS
                    ],
                    clients=[hub_client(hub_port, partner_secret, CLIENT_ID, PARTNER_CALLBACK)],
                    name="partner-idp",
                    display_name="Partner University proxy",
                )
            )
            self.hub = self._stack.enter_context(
                LocalHub(
                    self.state_dir / "hub",
                    self.repo_root,
                    port=hub_port,
                    issuer=self.idp.issuer,
                    client_id=CLIENT_ID,
                    client_secret=secret,
                    site_confs={name: site.conf_path for name, site in self.sites.items()},
                    keep_gateway_ports=True,  # clusters of a previous start find the gateway
                    providers={
                        PARTNER_PROVIDER: provider_settings(
                            self.partner.issuer, CLIENT_ID, partner_secret
                        )
                    },
                )
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything in reverse order of start."""
        self._stack.close()


def default_state_dir() -> Path:
    """The demo's state folder: ``$CONTINUUM_STATE_DIR`` or ``/var/lib/continuum-hub/demo``."""
    return Path(os.environ.get("CONTINUUM_STATE_DIR", "/var/lib/continuum-hub/demo"))
