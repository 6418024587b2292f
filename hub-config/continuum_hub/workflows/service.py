"""The hub side of the workflow service: managed service, its role, users' and servers' scope.

:func:`add_workflows_service` (called by ``hub-config/jupyterhub_config.py`` after all layers,
like the Dask Gateway's) reads the ``WorkflowService`` section and

* adds the managed service ``workflows`` (``python -m continuum_hub.workflows``) behind the
  hub's proxy at ``/services/workflows/``, listening on 127.0.0.1 — on ``port``, else on the
  port saved in ``state_dir/service-port.json`` while it is free (chosen free the first time,
  :func:`~continuum_hub.services.kept_ports`), so servers started before a restart of the hub
  still find it — its configuration (no secrets) in its environment (:data:`.app.CONFIG_ENV`);
* gives the service the role ``workflows-service`` on the hub's API: ``read:users`` and
  ``read:users:groups`` (the spawn form's rules need a user's groups; admins see all runs) and
  ``tokens`` (it mints, lists and revokes its runs' credentials, :mod:`.credentials`);
* gives every user ``access:services!service=workflows`` and puts it in the token of every
  server (``grant_service_access``), so the lab's *Run as batch job…* dialog and
  ``continuum-hub run`` in a terminal call the service with ``JUPYTERHUB_API_TOKEN``; sets
  ``CONTINUUM_WORKFLOWS_URL`` in the servers' environment (where the service answers).

Runs outlive everything on the hub's side: the service keeps them in its database (a SQLite
file 0600 in ``state_dir`` by default, any SQLAlchemy URL with ``db_url``) and the hub restarts
it when it stops; the runs' jobs and their credentials do not depend on any server.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Float, Integer, Unicode, validate
from traitlets.config import Config, Configurable

from ..services import (
    add_server_environment,
    add_service_entry,
    copied_sections,
    grant_service_access,
    hub_public_url,
    kept_ports,
    registry_environment,
    resolver_name,
)
from . import ACCESS_SCOPE, SERVICE_NAME, SERVICE_PREFIX
from .app import CONFIG_ENV
from .credentials import SERVICE_SCOPES

ROLE = "workflows-service"
#: where the service's port is kept across the hub's restarts (in its state folder)
PORT_FILE = "service-port.json"


def _positive(name: str, value: Any) -> float:
    seconds = float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, not {seconds}")
    return seconds


class WorkflowService(Configurable):
    """Batch runs of notebooks on the sites, as a hub-managed service."""

    enabled = Bool(True, config=True, help="Run the workflow service as a hub-managed service.")
    ip = Unicode("127.0.0.1", config=True, help="Address the service's REST API listens on.")
    port = Integer(
        0,
        config=True,
        help="""Port of the REST API (the hub's proxy forwards /services/workflows/ to it).  0:
        the port kept in ``state_dir/service-port.json`` while it is free, else a free one
        (saved there), so that servers started before a restart of the hub find the service.""",
    )
    connect_host = Unicode(
        "127.0.0.1",
        config=True,
        help="Host name by which the hub's proxy and users' servers reach the service.",
    )
    state_dir = Unicode(
        "",
        config=True,
        help="""Folder (0700) of the service's database and notebook snapshots.  Default:
        ``workflows`` in the hub's working folder.""",
    )
    db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the runs' database (e.g. ``postgresql+psycopg://…``).
        Default: ``sqlite:///<state_dir>/workflows.sqlite`` (file 0600).""",
    )
    poll_interval = Float(
        10.0,
        config=True,
        help="Seconds between two rounds of job status queries (one per site). Default 10.",
    )
    sign_in_interval = Float(
        60.0,
        config=True,
        help="""Seconds between two checks that a running run's credential can still get its
        owner's access token (else the run shows needs-sign-in). Default 60.""",
    )
    runs_root = Unicode(
        "~/continuum-runs",
        config=True,
        help="Folder of the run folders, in the user's account's home at each site.",
    )
    max_credential_days = Integer(
        7,
        config=True,
        help="""Lifetime in days of a run's hub token (its credential).  The token must live as
        long as the run, however long it queues; it is revoked as soon as the run ends, and its
        owner may revoke it at any time. Default 7.""",
    )
    public_url = Unicode(
        "",
        config=True,
        help="""The hub's public URL for the sign-in-again link shown on runs.  Default: the
        hub's ``public_url``, else its ``bind_url``.""",
    )
    extra_service_config = Dict(
        {},
        config=True,
        help="""More traitlets config for the service process, ``{section: {name: value}}``
        (e.g. ``WorkflowLimits``); applied last.""",
    )

    @validate("max_credential_days")
    def _validate_max_credential_days(self, proposal: Any) -> int:
        days = int(proposal["value"])
        if not 1 <= days <= 366:
            raise ValueError(f"max_credential_days must be between 1 and 366, not {days}")
        return days

    @validate("poll_interval")
    def _validate_poll_interval(self, proposal: Any) -> float:
        return _positive("poll_interval", proposal["value"])

    @validate("sign_in_interval")
    def _validate_sign_in_interval(self, proposal: Any) -> float:
        return _positive("sign_in_interval", proposal["value"])

    @property
    def state_path(self) -> str:
        """The state folder, absolute (default: ``workflows`` in the hub's working folder)."""
        return os.path.abspath(self.state_dir or os.path.join(os.getcwd(), "workflows"))

    def choose_port(self) -> int:
        """The configured port, else the kept one (:data:`PORT_FILE`): chosen once, so the
        proxy's route and the servers' environment agree, and the same after a restart."""
        if not self.port:
            path = Path(self.state_path) / PORT_FILE
            self.port = kept_ports(path, ("port",), self.ip)["port"]
        return self.port

    @property
    def url(self) -> str:
        """Where the hub's proxy and the servers reach the service."""
        return f"http://{self.connect_host}:{self.port}"

    def process_config(self, c: Config) -> dict[str, Any]:
        """The service process's traitlets config (JSON-able; no secrets)."""
        registry = c.SiteSpawner.registry_path if "registry_path" in c.SiteSpawner else ""
        if not registry:
            raise SystemExit("WorkflowService needs the site registry (SiteSpawner.registry_path)")
        settings: dict[str, Any] = {
            "ip": self.ip,
            "port": self.port,
            "state_dir": self.state_path,
            "db_url": self.db_url,
            "registry_path": os.path.abspath(registry),
            "poll_interval": self.poll_interval,
            "sign_in_interval": self.sign_in_interval,
            "max_credential_days": self.max_credential_days,
            "runs_root": self.runs_root,
            "hub_public_url": self.public_url.rstrip("/") or hub_public_url(c.JupyterHub),
        }
        resolver = resolver_name(c)
        if resolver is not None:
            settings["account_resolver_class"] = resolver
        config: dict[str, Any] = {"WorkflowsApp": settings}
        config.update(copied_sections(c, ("WorkflowLimits", "AccountResolver", "AccountMapper")))
        for section, values in self.extra_service_config.items():
            config.setdefault(section, {}).update(values)
        return config

    def service(self, c: Config) -> dict[str, Any]:
        """The ``JupyterHub.services`` entry."""
        environment = {CONFIG_ENV: json.dumps(self.process_config(c)), **registry_environment(c)}
        return {
            "name": SERVICE_NAME,
            "url": self.url,
            "command": [sys.executable, "-m", "continuum_hub.workflows"],
            "cwd": os.getcwd(),
            "environment": environment,
        }

    def server_environment(self) -> dict[str, str]:
        """Where servers (the lab extension, ``continuum-hub run``) find the service."""
        return {"CONTINUUM_WORKFLOWS_URL": f"{self.url}{SERVICE_PREFIX}/"}


def add_workflows_service(c: Config) -> WorkflowService | None:
    """Add the workflow service, its role, the users' scope and the servers' environment."""
    service = WorkflowService(config=c)
    if not service.enabled:
        return None
    service.choose_port()
    if not add_service_entry(c, service.service(c)):
        return None  # already added (config loaded twice)
    hub = c.JupyterHub
    roles = [dict(r) for r in hub.load_roles] if "load_roles" in hub else []
    if not any(r.get("name") == ROLE for r in roles):
        roles.append({"name": ROLE, "scopes": list(SERVICE_SCOPES), "services": [SERVICE_NAME]})
    hub.load_roles = roles
    grant_service_access(c, ACCESS_SCOPE)
    add_server_environment(c, service.server_environment())
    return service
