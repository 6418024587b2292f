"""The hub of the local federation: JupyterHub with ``continuum-oidc`` and ``continuum-site``.

:class:`LocalHub` writes the deployment layer (a traitlets JSON file, mode 0600) that points the
layered ``hub-config/jupyterhub_config.py`` at the local identity provider and Slurm sites, and
runs ``jupyterhub`` on 127.0.0.1 behind an external proxy, as a facility runs it (``deploy/``):
configurable-http-proxy is a process of its own (``ConfigurableHTTPProxy.should_start = False``),
so users' connections to their servers survive a restart of the hub, and the hub runs under
:mod:`.supervisor`, which restarts it when it dies and kills what the dead hub left (its managed
services), as systemd does with the deployed units.  The proxy and the supervisor end with the
process that started them, even on ``SIGKILL`` (``ManagedProcess.death_signal``).  Secrets
(cookie secret, ``JUPYTERHUB_CRYPT_KEY``, the proxy token, the OIDC client secret) live in 0600
files of the state folder and reach the hub and the proxy through their environment or that
file, never their command lines.

The hub trusts the local provider as its primary one (``continuum``); more providers (the
demo's partner proxy) come as ``FederatedAuthenticator.providers`` entries, e.g. from
:func:`provider_settings`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
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
from .process import (
    ManagedProcess,
    Service,
    free_port,
    log_tail,
    parent_pid,
    port_open,
)

#: seconds the supervisor waits for a stopping hub before it kills it and what it left (a
#: hub whose services ignore SIGINT takes 10 s more per service: JupyterHub's interrupt_timeout)
HUB_STOP_TIMEOUT = 15
#: the running hub's pid, written by the supervisor (in the state folder)
HUB_PID_FILE = "jupyterhub.pid"
#: what the supervisor's warm spare imports: JupyterHub and our heaviest packages
HUB_PRELOAD = (
    "jupyterhub.app",
    "continuum_hub.identity.auth",
    "continuum_spawners.spawner",
    "continuum_hub.gateway.service",
    "continuum_hub.workflows.service",
    "continuum_hub.catalogue.service",
)
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


#: the server extensions installed in the project's environment; a lean server loads none
LEAN_SERVER_EXTENSIONS = (
    "continuum_lab",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "jupyterlab",
    "notebook_shim",
    "panel.io.jupyter_server_extension",
)


def lean_server_config() -> dict[str, dict[str, Any]]:
    """Hub config (``extra_config``) for lean servers: ``jupyterhub-singleuser`` without any
    other server extension, for tests and benchmarks that need many servers answering, not
    JupyterLab."""
    off = [f"--ServerApp.jpserver_extensions={name}=False" for name in LEAN_SERVER_EXTENSIONS]
    return {"Spawner": {"args": off, "default_url": "/api/status"}}


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
    restart_delay
        Seconds before the supervisor starts a hub that died again (doubled after each quick
        failure, see :mod:`.supervisor`).
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
        restart_delay: float = 1.0,
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
        self.restart_delay = restart_delay
        #: the hub's supervisor (python -m continuum_federation.supervisor), the hub below it
        self.process: ManagedProcess | None = None
        #: configurable-http-proxy, beside the hub: it outlives restarts of the hub
        self.proxy: ManagedProcess | None = None

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
            # the proxy is started beside the hub (start_proxy); its token comes from the
            # environment (CONFIGPROXY_AUTH_TOKEN), as for the deployed units
            "ConfigurableHTTPProxy": {
                "api_url": f"http://127.0.0.1:{self.proxy_api_port}",
                "should_start": False,
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

    def start_proxy(self, timeout: float = 30.0) -> bool:
        """Start configurable-http-proxy unless it runs; whether it was started now.

        Unlike the deployed unit (``deploy/``), no ``--default-target``: a new proxy answers
        nothing until the hub has put its routes back (the hub's and the servers' at once, at
        the end of its start), so ``/hub/health`` through it means the servers are reachable.
        While the hub restarts, its route stays: ``/hub/`` fails, users' servers go on.
        """
        if self.proxy is not None and self.proxy.running:
            return False
        argv = [
            str(self.repo_root / "node_modules" / ".bin" / "configurable-http-proxy"),
            *("--ip", "127.0.0.1", "--port", str(self.port)),
            *("--api-ip", "127.0.0.1", "--api-port", str(self.proxy_api_port)),
            *("--error-target", f"http://127.0.0.1:{self.api_port}/hub/error"),
        ]
        env = {  # PATH (for node) and the API token, nothing else
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "CONFIGPROXY_AUTH_TOKEN": read_or_create_secret(self.state_dir / "proxy_token"),
        }
        self.proxy = ManagedProcess(
            "proxy", argv, self.state_dir, env=env, cwd=self.state_dir, death_signal=signal.SIGTERM
        ).start_ready(lambda: port_open(self.proxy_api_port) and port_open(self.port), timeout)
        return True

    def supervisor_argv(self) -> list[str]:
        """The hub's command under :mod:`.supervisor`."""
        bin_dir = Path(sys.executable).parent
        config = self.repo_root / "hub-config" / "jupyterhub_config.py"
        return [
            sys.executable,
            *("-m", "continuum_federation.supervisor", "--delay", str(self.restart_delay)),
            *("--stop-timeout", str(HUB_STOP_TIMEOUT)),
            *("--pid-file", str(self.state_dir / HUB_PID_FILE)),
            # a warm spare with JupyterHub and our heaviest packages imported: a restart
            # starts from there (importing is most of a hub's start)
            *("--entry", "jupyterhub.app:main"),
            # what the deployed unit's command (python -m continuum_hub.process_start) does
            # first, before the spare imports JupyterHub
            *("--setup", "continuum_hub.process_start:skip_slow_optional_imports"),
            *(arg for module in HUB_PRELOAD for arg in ("--preload", module)),
            *("--", str(bin_dir / "jupyterhub"), "-f", str(config)),
        ]

    def start(self, timeout: float = 90.0) -> LocalHub:
        """Write the deployment layer, start the proxy (unless it runs) and the supervised hub,
        and wait until the hub answers through the proxy."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        write_private_json(self.state_dir / "continuum_hub_config.json", self.config())
        started_proxy = self.start_proxy()
        try:
            self.process = ManagedProcess(
                "jupyterhub",
                self.supervisor_argv(),
                self.state_dir,
                env=self.environment(),
                cwd=self.state_dir,
                death_signal=signal.SIGTERM,  # the supervisor then stops the hub cleanly
            ).start_ready(self.healthy, timeout)
        except BaseException:
            if started_proxy:
                self.stop()
            raise
        return self

    @property
    def hub_pid(self) -> int | None:
        """The running ``jupyterhub`` process (the supervisor's child), or ``None``."""
        if self.process is None or self.process.proc is None:
            return None
        try:
            pid = int((self.state_dir / HUB_PID_FILE).read_text())
        except (OSError, ValueError):
            return None
        return pid if parent_pid(pid) == self.process.proc.pid else None

    def healthy(self) -> bool:
        """Whether the hub answers ``/hub/health`` through the proxy now."""
        if not port_open(self.api_port):  # not up yet: spare the proxy's log an error
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/hub/health", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def log(self, lines: int = 60) -> str:
        """The end of the hub's log, for error messages."""
        return log_tail(self.state_dir / "jupyterhub.log", lines)

    def stop(self, *, proxy: bool = True) -> None:
        """Stop the hub and its services, and the proxy unless ``proxy`` is false (servers'
        jobs are left to the caller).

        The supervisor stops the hub (``SIGTERM``; the hub ends its services), then kills what
        is left below it; a hub restarted later with the proxy kept puts routes back as needed.
        """
        if self.process is not None:
            self.process.stop(timeout=HUB_STOP_TIMEOUT + 5)
            self.process = None
        if proxy and self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
