"""Usage accounting in the hub: the ledger's place, the collector, the usage REST API.

:func:`add_usage` (called by ``jupyterhub_config.py`` after the managed services are added):

* decides the ledger's URL (``UsageCollector.db_url``, else ``$CONTINUUM_USAGE_DB_URL``, else
  :func:`continuum_spawners.ledger.ledger_url` of ``JupyterHub.db_url``) and puts it in the hub
  process's environment (the spawner records its jobs there) and in the environment of the
  services that submit jobs (Dask Gateway, workflows);
* installs the REST handlers (:mod:`.api`) with the ledger and the registry in the hub's tornado
  settings;
* starts the :class:`~.collector.UsageCollector` in the hub's event loop.

Modules: :mod:`.collector` (accounting → ledger), :mod:`.api` (REST).
"""

from __future__ import annotations

import os
from typing import Any

from traitlets.config import Config

from continuum_spawners import ledger as ledgers

from ..gateway import SERVICE_NAME as GATEWAY
from ..workflows import SERVICE_NAME as WORKFLOWS
from .api import SETTINGS, install_usage_handlers
from .collector import UsageCollector

__all__ = ["UsageCollector", "add_usage", "usage_url"]

#: the managed services that submit jobs and so write the ledger
SUBMITTING_SERVICES = (GATEWAY, WORKFLOWS)
#: JupyterHub's own default database
HUB_DEFAULT_DB = "sqlite:///jupyterhub.sqlite"

# the collector of this process (the event loop holds tasks only weakly)
_running: dict[str, UsageCollector] = {}


def usage_url(c: Config) -> str:
    """The ledger's URL for the hub configuration ``c``."""
    if "db_url" in c.UsageCollector and c.UsageCollector.db_url:
        return str(c.UsageCollector.db_url)
    hub = c.JupyterHub
    return ledgers.ledger_url(str(hub.db_url) if "db_url" in hub else HUB_DEFAULT_DB)


def add_usage(c: Config) -> UsageCollector | None:
    """Wire usage accounting into the hub configuration ``c`` (see the module docstring);
    the started collector (``None`` outside a running hub or without a registry)."""
    url = usage_url(c)
    os.environ[ledgers.ENV_URL] = url
    services: list[dict[str, Any]] = [dict(s) for s in c.JupyterHub.get("services", [])]
    for service in services:
        if service.get("name") in SUBMITTING_SERVICES:
            service["environment"] = {**service.get("environment", {}), ledgers.ENV_URL: url}
    if services:
        c.JupyterHub.services = services
    registry = c.SiteSpawner.registry_path if "registry_path" in c.SiteSpawner else ""
    settings = dict(c.JupyterHub.tornado_settings) if "tornado_settings" in c.JupyterHub else {}
    settings[SETTINGS] = {"db_url": url, "registry_path": str(registry)}
    c.JupyterHub.tornado_settings = settings
    install_usage_handlers()
    old = _running.pop("collector", None)
    if old is not None:  # the configuration loaded again in the same process
        old.stop()
    collector = UsageCollector(config=c, db_url=url, registry_path=str(registry))
    if collector.start() is None:
        return None
    _running["collector"] = collector
    return collector
