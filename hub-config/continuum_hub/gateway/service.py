"""The hub side of the Dask Gateway: managed service, scopes, servers' environment, cleanup.

:func:`add_gateway_service` (called by ``hub-config/jupyterhub_config.py`` after all layers, like
the idle culler) reads the ``GatewayService`` section and

* adds the managed service ``dask-gateway`` (``python -m continuum_hub.gateway``) behind the hub's
  proxy at ``/services/dask-gateway/``, with its configuration (no secrets) in its environment;
* gives every user the scope ``access:services!service=dask-gateway``
  (``JupyterHub.extra_user_scopes``) and adds it to the ``server`` role and
  ``Spawner.server_token_scopes`` (whichever decides), so the token in every
  server (``JUPYTERHUB_API_TOKEN``) may use the gateway, which accepts no other tokens
  (``jupyterhub_service_name``);
* sets ``DASK_GATEWAY__ADDRESS``, ``__PROXY_ADDRESS``, ``__PUBLIC_ADDRESS`` and
  ``__AUTH__TYPE=jupyterhub`` in the servers' environment: ``Gateway()`` and
  ``GatewayCluster()`` need no arguments;
* chains :meth:`GatewayService.stop_user_clusters` into ``Spawner.post_stop_hook``: when a user's
  last server stops (stopped, culled, or its job ended) their clusters are stopped.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from traitlets import Bool, Dict, Float, Integer, Unicode
from traitlets.config import Config, Configurable

from ..services import (
    add_server_environment,
    add_service_entry,
    copied_sections,
    free_port,
    grant_service_access,
    hub_public_url,
    registry_environment,
    resolver_name,
    resolver_sections,
)
from . import ACCESS_SCOPE, SERVICE_NAME, SERVICE_PREFIX
from .app import CONFIG_ENV


class GatewayService(Configurable):
    """Dask Gateway as a hub-managed service, running clusters on the registry's sites."""

    enabled = Bool(True, config=True, help="Run the Dask Gateway as a hub-managed service.")
    ip = Unicode("127.0.0.1", config=True, help="Address the gateway's sockets listen on.")
    port = Integer(
        0,
        config=True,
        help="""Port of the gateway's HTTP proxy (API and dashboards; the hub's proxy forwards
        /services/dask-gateway/ to it).  0: a free port chosen when the hub's config loads —
        set a fixed one so that running clusters find a restarted hub's gateway.""",
    )
    tcp_port = Integer(
        0, config=True, help="Port of the gateway's scheduler (TLS) proxy; 0: a free port."
    )
    api_port = Integer(0, config=True, help="Port of the gateway's private API; 0: a free port.")
    connect_host = Unicode(
        "127.0.0.1",
        config=True,
        help="Host name by which servers and compute nodes reach the gateway's ports.",
    )
    public_url = Unicode(
        "",
        config=True,
        help="""The gateway's URL for browsers (dashboard links).  Default: the hub's public URL
        (``JupyterHub.public_url``, else ``bind_url``) + ``/services/dask-gateway``.""",
    )
    state_dir = Unicode(
        "",
        config=True,
        help="""Folder (0700) for the gateway's cluster database and secrets.  Default:
        ``dask-gateway`` in the hub's working folder.""",
    )
    db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the gateway's cluster database, e.g.
        ``postgresql+psycopg://hub@/continuum_gateway?host=/var/run/postgresql`` (a database of
        its own: dask-gateway-server's tables; no password in it, it travels in the gateway's
        environment: peer authentication or the service account's ``~/.pgpass``).  Default:
        ``sqlite:///<state_dir>/gateway.sqlite`` (file 0600).""",
    )
    start_timeout = Integer(
        120,
        config=True,
        help="""Seconds the hub waits for the gateway to answer when it starts it (JupyterHub's
        ``Service.timeout``, 30 by default, after which the hub gives up and exits).""",
    )
    idle_timeout = Float(
        1800.0,
        config=True,
        help="Seconds after which a cluster with no work is shut down (0: never). Default 1800.",
    )
    scheduler_in_worker_job = Bool(
        True,
        config=True,
        help="""A cluster created with workers (option ``workers``) runs its first worker in the
        scheduler's Slurm job: one job start, not two, before the first worker (the job asks for
        the cores and memory of both, and stays while the scheduler runs, also once that worker
        is scaled away).  False: each worker is a job of its own.""",
    )
    stop_with_server = Bool(
        True,
        config=True,
        help="Stop a user's clusters when their last server stops (or is culled).",
    )
    extra_gateway_config = Dict(
        {},
        config=True,
        help="""More traitlets config for the gateway process, ``{section: {name: value}}``
        (e.g. ``SiteSlurmBackend``, ``SiteClusterConfig``); applied last.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # a free port is chosen once, so the service and the servers' environment agree
        self.port = self.port or free_port(self.ip)
        self.tcp_port = self.tcp_port or free_port(self.ip)
        self.api_port = self.api_port or free_port(self.ip)

    @property
    def url(self) -> str:
        """Where the hub's proxy, servers and jobs reach the gateway's HTTP proxy."""
        return f"http://{self.connect_host}:{self.port}"

    def public_address(self, hub: Any) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return hub_public_url(hub) + SERVICE_PREFIX

    def server_environment(self, hub: Any) -> dict[str, str]:
        """What makes ``Gateway()`` work with no arguments in a user's server."""
        return {
            "DASK_GATEWAY__ADDRESS": self.url + SERVICE_PREFIX,
            "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{self.connect_host}:{self.tcp_port}",
            "DASK_GATEWAY__PUBLIC_ADDRESS": self.public_address(hub),
            "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        }

    def gateway_config(self, c: Config) -> dict[str, Any]:
        """The gateway process's traitlets config (JSON-able; secrets are added by the process)."""
        registry = c.SiteSpawner.registry_path if "registry_path" in c.SiteSpawner else ""
        if not registry:
            raise SystemExit("GatewayService needs the site registry (SiteSpawner.registry_path)")
        state = self.state_dir or os.path.join(os.getcwd(), "dask-gateway")
        config: dict[str, Any] = {
            "ContinuumGateway": {"state_dir": state},
            "DaskGateway": {
                "address": f"{self.ip}:{self.api_port}",
                "backend_class": "continuum_hub.gateway.backend.SiteSlurmBackend",
                "authenticator_class": "continuum_hub.gateway.auth.HubTokenAuthenticator",
            },
            "Proxy": {
                "address": f"{self.ip}:{self.port}",
                "tcp_address": f"{self.ip}:{self.tcp_port}",
                "prefix": SERVICE_PREFIX,
            },
            "HubTokenAuthenticator": {"jupyterhub_service_name": SERVICE_NAME},
            "SiteSlurmBackend": {
                "registry_path": os.path.abspath(registry),
                "stop_clusters_on_shutdown": False,
                "api_url": self.url + SERVICE_PREFIX + "/api",
                **({"db_url": self.db_url} if self.db_url else {}),
            },
            "SiteClusterConfig": {
                "idle_timeout": self.idle_timeout,
                "scheduler_in_worker_job": self.scheduler_in_worker_job,
            },
        }
        # the gateway maps hub users to site accounts as the hub's spawner does
        resolver = resolver_name(c)
        if resolver is not None:
            config["SiteSlurmBackend"]["account_resolver_class"] = resolver
        config.update(copied_sections(c, ("GatewayLimits",)))
        config.update(resolver_sections(c))
        for section, values in self.extra_gateway_config.items():
            config.setdefault(section, {}).update(values)
        return config

    def service(self, c: Config) -> dict[str, Any]:
        """The ``JupyterHub.services`` entry."""
        environment = {CONFIG_ENV: json.dumps(self.gateway_config(c)), **registry_environment(c)}
        return {
            "name": SERVICE_NAME,
            "url": self.url,
            "command": [sys.executable, "-m", "continuum_hub.gateway"],
            # the hub's folder: relative paths (account leases) mean the same to both
            "cwd": os.getcwd(),
            "environment": environment,
            "oauth_no_confirm": True,  # the dashboard sign-in: the user's own hub, no prompt
            "timeout": self.start_timeout,
        }

    async def stop_user_clusters(self, spawner: Any) -> None:
        """``Spawner.post_stop_hook``: stop the user's clusters when their last server stops.

        Calls the gateway's API as the user, with a token made for this (scope
        ``access:services!service=dask-gateway``, five minutes) and removed afterwards.
        """
        user = spawner.user
        if any(s is not spawner and s.active for s in user.spawners.values()):
            return
        from jupyterhub import orm
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        try:
            token = user.new_api_token(
                note="dask-gateway: stop clusters with the server",
                expires_in=300,
                scopes=[ACCESS_SCOPE],
            )
        except ValueError as exc:  # the user does not hold the gateway's scope: nothing of theirs
            spawner.log.warning("Not stopping Dask clusters of %s: %s", user.name, exc)
            return
        client = AsyncHTTPClient()
        api = f"{self.url}{SERVICE_PREFIX}/api/v1/clusters"
        headers = {"Authorization": f"jupyterhub {token}"}
        try:
            response = await client.fetch(f"{api}/", headers=headers, request_timeout=30)
            for name in json.loads(response.body):
                spawner.log.info("Stopping Dask cluster %s of %s with its server", name, user.name)
                await client.fetch(f"{api}/{name}", method="DELETE", headers=headers)
        except (OSError, HTTPClientError) as exc:
            spawner.log.warning("Could not stop the Dask clusters of %s: %s", user.name, exc)
        finally:
            orm_token = orm.APIToken.find(user.db, token)
            if orm_token is not None:
                user.db.delete(orm_token)
                user.db.commit()


def _chain_post_stop_hook(c: Config, hook: Any) -> None:
    previous = c.Spawner.post_stop_hook if "post_stop_hook" in c.Spawner else None
    if previous is None:
        c.Spawner.post_stop_hook = hook
        return

    async def both(spawner: Any) -> None:
        result = previous(spawner)
        if hasattr(result, "__await__"):
            await result
        await hook(spawner)

    c.Spawner.post_stop_hook = both


def add_gateway_service(c: Config) -> GatewayService | None:
    """Add the gateway service, its scopes, the servers' environment and the cleanup hook."""
    gateway = GatewayService(config=c)
    if not gateway.enabled:
        return None
    if not add_service_entry(c, gateway.service(c)):
        return None  # already added (config loaded twice)
    grant_service_access(c, ACCESS_SCOPE)
    add_server_environment(c, gateway.server_environment(c.JupyterHub))
    if gateway.stop_with_server:
        _chain_post_stop_hook(c, gateway.stop_user_clusters)
    return gateway
