"""The hub of the local federation: JupyterHub with ``continuum-oidc`` and ``continuum-site``.

:class:`LocalHub` writes the deployment layer (a traitlets JSON file, mode 0600) that points the
layered ``hub-config/jupyterhub_config.py`` at the local identity provider and Slurm sites, and
runs ``jupyterhub`` with its proxy on 127.0.0.1.  Secrets (cookie secret, ``JUPYTERHUB_CRYPT_KEY``,
the proxy token, the OIDC client secret) live in 0600 files of the state folder and reach the
hub through its environment or that file, never its command line.

The hub trusts the local provider as its primary one (``continuum``); more providers (the
demo's partner proxy) come as ``FederatedAuthenticator.providers`` entries, e.g. from
:func:`provider_settings`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from continuum_hub.metrics import spawn_buckets_environment
from continuum_hub.services import kept_ports

from .idp import (
    ADMIN_GROUP,
    DEMO_USERS,
    ENTITLEMENT_AUTHORITY,
    ENTITLEMENT_NAMESPACE,
    PARTNER_AUTHORITY,
    PARTNER_NAMESPACE,
    VO_HEP,
    VO_RADIO,
)
from .process import ManagedProcess, Service, free_port, log_tail

#: the gateway's ports of a hub that keeps them (in its state folder)
GATEWAY_PORTS_FILE = "gateway-ports.json"
GATEWAY_PORT_NAMES = ("port", "tcp_port", "api_port")


def gateway_ports(path: Path | None) -> dict[str, int]:
    """The Dask Gateway's HTTP, scheduler (TLS) and private API ports.

    With ``path`` (a JSON file), the ports saved there are used again while they are free, so
    the schedulers of clusters started before a restart (which know the gateway's addresses)
    reach the restarted gateway; a port that is taken or missing is replaced by a free one, and
    the choice is saved (atomic rename).  Without ``path``: free ports, saved nowhere.  The
    hub's services keep theirs the same way (:func:`continuum_hub.services.kept_ports`).
    """
    return kept_ports(path, GATEWAY_PORT_NAMES)


# what the demo identity provider's entitlements say, as the hub sees it
DEMO_NAMESPACE = ENTITLEMENT_NAMESPACE.removeprefix("urn:")
DEMO_VOS = (VO_HEP, VO_RADIO)
PRIMARY_PROVIDER = "continuum"
PARTNER_PROVIDER = "partner"
LINK_CLAIM = "voperson_id"
SCOPE = ["openid", "profile", "email", "eduperson_entitlement", "offline_access", LINK_CLAIM]


def provider_settings(
    issuer: str,
    client_id: str,
    client_secret: str,
    *,
    display_name: str = "Partner University proxy",
    namespace: str = PARTNER_NAMESPACE,
    authority: str = PARTNER_AUTHORITY,
) -> dict[str, Any]:
    """``OIDCProvider`` options of a further demo provider (by default the partner proxy):
    trusted for its own entitlement namespace and authority only, linked by ``voperson_id``."""
    return {
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": client_secret,
        "display_name": display_name,
        "trusted_namespaces": [namespace.removeprefix("urn:")],
        "trusted_authorities": [authority],
        "link_claim": LINK_CLAIM,
        "scope": SCOPE,
    }


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """A hex secret kept in a 0600 file, created on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def write_private_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    tmp.replace(path)


class LocalHub(Service):
    """JupyterHub of the local federation.

    Parameters
    ----------
    state_dir
        Folder for the hub's database, secrets, deployment layer and logs.
    repo_root
        The checkout (for ``hub-config/`` and the proxy in ``node_modules``).
    issuer, client_id, client_secret
        The OpenID provider and this hub's client registration there.
    site_confs
        ``slurm.conf`` path of every local site, by site name.
    port
        Public port of the proxy; picked free when ``None``.
    registry_path
        Site registry; defaults to ``hub-config/sites.demo.yaml``.
    providers
        More identity providers by name (``OIDCProvider`` options, see
        :func:`provider_settings`); their redirect URIs are ``/hub/oauth_callback/<name>``.
    extra_config
        More traitlets config merged into the deployment layer (tests use it).
    keep_gateway_ports
        Keep the Dask Gateway's ports in ``state_dir/gateway-ports.json`` and use them again at
        the next start while they are free (the demo: its clusters outlive a restart).  Default:
        new free ports for every ``LocalHub`` (tests).
    """

    def __init__(
        self,
        state_dir: Path,
        repo_root: Path,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        site_confs: Mapping[str, Path],
        port: int | None = None,
        registry_path: Path | None = None,
        allowed_groups: Sequence[str] = (*DEMO_VOS, ADMIN_GROUP),
        admin_groups: Sequence[str] = (ADMIN_GROUP,),
        providers: Mapping[str, Mapping[str, Any]] | None = None,
        extra_config: Mapping[str, Mapping[str, Any]] | None = None,
        keep_gateway_ports: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.repo_root = Path(repo_root)
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.site_confs = dict(site_confs)
        self.port = port or free_port()
        self.api_port = free_port()  # the hub's own API, which servers and services call
        self.proxy_api_port = free_port()
        # the Dask Gateway's HTTP, scheduler (TLS) and private API ports, fixed for this hub so
        # that live clusters find their gateway again after a restart
        # (``keep_gateway_ports``: also after a restart of this object, see gateway_ports())
        self.gateway_ports = gateway_ports(
            self.state_dir / GATEWAY_PORTS_FILE if keep_gateway_ports else None
        )
        self.registry_path = registry_path or self.repo_root / "hub-config" / "sites.demo.yaml"
        self.allowed_groups = list(allowed_groups)
        self.admin_groups = list(admin_groups)
        self.providers = {name: dict(settings) for name, settings in (providers or {}).items()}
        self.extra_config = extra_config or {}
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The hub's public base URL."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, dict[str, Any]]:
        """The deployment layer (traitlets config as a dict)."""
        config: dict[str, dict[str, Any]] = {
            "JupyterHub": {
                "bind_url": f"{self.url}/",
                "hub_bind_url": f"http://127.0.0.1:{self.api_port}",
                "db_url": f"sqlite:///{self.state_dir / 'jupyterhub.sqlite'}",
                "cookie_secret_file": str(self.state_dir / "cookie_secret"),
            },
            "ConfigurableHTTPProxy": {
                "api_url": f"http://127.0.0.1:{self.proxy_api_port}",
                "command": [
                    str(self.repo_root / "node_modules" / ".bin" / "configurable-http-proxy")
                ],
                "pid_file": str(self.state_dir / "proxy.pid"),
            },
            "FederatedAuthenticator": {
                "issuer": self.issuer,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "oauth_callback_url": f"{self.url}/hub/oauth_callback",
                "provider_name": PRIMARY_PROVIDER,
                "scope": SCOPE,
                "trusted_namespaces": [DEMO_NAMESPACE],
                "trusted_authorities": [ENTITLEMENT_AUTHORITY],
                "link_claim": LINK_CLAIM,
                # the demo users' accounts belong to the primary provider's people
                "reserved_usernames": [user["username"] for user in DEMO_USERS],
                "providers": self.providers,
                "identity_db_path": str(self.state_dir / "identities.sqlite"),
                "allowed_groups": self.allowed_groups,
                "admin_groups": self.admin_groups,
                "login_service": "Continuum demo IdP",
            },
            "SiteSpawner": {"registry_path": str(self.registry_path)},
            "GatewayService": {**self.gateway_ports, "state_dir": str(self.state_dir / "gateway")},
            # batch runs: the workflow service's database and notebook snapshots
            "WorkflowService": {"state_dir": str(self.state_dir / "workflows")},
            # Dask clusters with GPUs for the radio VO (the GPU site's users), none for others
            "GatewayLimits": {"groups": {VO_RADIO: {"max_gpus": 2}}},
        }
        for section, values in self.extra_config.items():
            config.setdefault(section, {}).update(values)
        return config

    def environment(self) -> dict[str, str]:
        """Environment of the hub process."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTERHUB_", "CONFIGPROXY_", "CONTINUUM_"))
        }
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        env["JUPYTERHUB_CRYPT_KEY"] = read_or_create_secret(self.state_dir / "crypt_key")
        env["CONFIGPROXY_AUTH_TOKEN"] = read_or_create_secret(self.state_dir / "proxy_token")
        env["CONTINUUM_HUB_CONFIG"] = str(self.state_dir / "continuum_hub_config.json")
        # JupyterHub's spawn-duration histogram up to a day: batch jobs queue for hours
        env.update(spawn_buckets_environment())
        for name, conf in self.site_confs.items():
            env[f"CONTINUUM_SLURM_CONF_{name.upper()}"] = str(conf)
        return env

    def start(self, timeout: float = 90.0) -> LocalHub:
        """Write the deployment layer, start the hub and wait until it answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        write_private_json(self.state_dir / "continuum_hub_config.json", self.config())
        argv = [
            str(Path(sys.executable).parent / "jupyterhub"),
            "-f",
            str(self.repo_root / "hub-config" / "jupyterhub_config.py"),
        ]
        self.process = ManagedProcess(
            "jupyterhub", argv, self.state_dir, env=self.environment(), cwd=self.state_dir
        ).start_ready(self._healthy, timeout)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/hub/health", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def log(self, lines: int = 60) -> str:
        """The end of the hub's log, for error messages."""
        return log_tail(self.state_dir / "jupyterhub.log", lines)

    def stop(self) -> None:
        """Stop the hub, its proxy and services (servers' jobs are left to the caller).

        The proxy and the services run in sessions of their own; ``ManagedProcess.stop`` ends
        those that outlive a hub killed before its cleanup.
        """
        if self.process is not None:
            self.process.stop(timeout=20)
            self.process = None
