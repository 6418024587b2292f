"""The whole local federation in one object: munge, Slurm accounting (MariaDB + one slurmdbd),
two Slurm sites, two OpenID providers (the home proxy and a partner institution's, with
different issuers), a TAP server (DaCHS) for the catalogue, the hub.

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

from continuum_hub.catalogue.app import DEFAULT_SOURCES

from .accounts import ensure_unix_user
from .dachs import DachsServer
from .demo_archive import generate as generate_archive
from .hub import (
    PARTNER_PROVIDER,
    LocalHub,
    provider_settings,
    read_or_create_secret,
    write_private_json,
)
from .idp import DEMO_USERS, PARTNER_USERS, OpenIDProvider, hub_client, make_password
from .mariadb import MariaDBServer
from .modules import write_module_trees
from .munge import MungeDaemon
from .process import Service, free_port
from .prometheus import LocalPrometheus, hub_targets, write_token_file
from .rucio import RucioServer
from .slurm import LocalSlurmCluster, load_cluster_specs
from .slurmdbd import SlurmDBD

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
    slurmdbd: SlurmDBD | None = None
    sites: dict[str, LocalSlurmCluster] = field(default_factory=dict)
    idp: OpenIDProvider | None = None
    partner: OpenIDProvider | None = None
    hub: LocalHub | None = None
    tap: DachsServer | None = None
    rucio: RucioServer | None = None
    prometheus: LocalPrometheus | None = None
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
            write_module_trees()  # the sites' software, which the registry's `lmod` names
            # one slurmdbd records the jobs of every site (sacct answers); started before the
            # sites and, by the exit stack, stopped after them
            database = self._stack.enter_context(MariaDBServer(self.state_dir / "mariadb"))
            self.slurmdbd = self._stack.enter_context(
                SlurmDBD(self.state_dir / "slurmdbd", self.munge.socket, database)
            )
            self.slurmdbd.register(list(specs), [user["username"] for user in DEMO_USERS])
            for name, spec in specs.items():
                cluster = LocalSlurmCluster(
                    name,
                    spec,
                    self.state_dir / "slurm",
                    self.munge.socket,
                    accounting=self.slurmdbd.address,
                )
                self.sites[name] = self._stack.enter_context(cluster)
            # the IVOA TAP server (GAVO DaCHS) the catalogue's `tap` source reads
            self.tap = self._stack.enter_context(DachsServer(self.state_dir / "dachs"))
            # the Rucio server the catalogue's `rucio` source reads (continuum_federation.rucio)
            self.rucio = self._stack.enter_context(RucioServer(self.state_dir / "rucio"))
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
            # Prometheus' token on the hub (read:metrics only), made before the hub reads it
            scrape_token = self.state_dir / "prometheus" / "scrape-token"
            write_token_file(scrape_token)
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
                    extra_config={
                        "CatalogueService": {"sources": self.catalogue_sources()},
                        "MetricsScrape": {"token_file": str(scrape_token)},
                    },
                    providers={
                        PARTNER_PROVIDER: provider_settings(
                            self.partner.issuer, CLIENT_ID, partner_secret
                        )
                    },
                )
            )
            self.prometheus = self._stack.enter_context(
                LocalPrometheus(
                    self.state_dir / "prometheus", hub_targets(self.hub.url, scrape_token)
                )
            )
        except BaseException:
            self.stop()
            raise
        return self

    def catalogue_sources(self) -> list[dict[str, Any]]:
        """The demo catalogue's sources: the built-in index (harvesting the demo archive), the
        Rucio server, the radio TAP service and the sites' software."""
        assert self.tap is not None
        tap = {
            "name": "radio-tap",
            "kind": "tap",
            "label": "Radio archive (TAP)",
            "url": self.tap.tap_url,
            "registry_url": self.tap.registry_url,
            "vo": "vo.radio.example",
            "visibility": "vo",
        }
        # the built-in index harvests the demo archive (generated once, kept in the state folder)
        archive = generate_archive(self.state_dir / "catalogue-archive")
        builtin = {**DEFAULT_SOURCES[0], "harvest": archive["specs"]}
        # the sites' environments and Lmod modules (the registry's `lmod`, see .modules)
        software = {"name": "software", "kind": "software", "label": "Software at the sites"}
        assert self.rucio is not None
        return [builtin, *DEFAULT_SOURCES[1:], self.rucio.source_settings(), tap, software]

    def stop(self) -> None:
        """Stop everything in reverse order of start."""
        self._stack.close()


def default_state_dir() -> Path:
    """The demo's state folder: ``$CONTINUUM_STATE_DIR`` or ``/var/lib/continuum-hub/demo``."""
    return Path(os.environ.get("CONTINUUM_STATE_DIR", "/var/lib/continuum-hub/demo"))
