"""The hub side of the workflow service: managed service, its role, users' and servers' scope.

:func:`add_workflows_service` (called by ``hub-config/jupyterhub_config.py`` after all layers,
like the Dask Gateway's) reads the ``WorkflowService`` section and, through
:class:`~continuum_hub.services.ManagedService` (shared with the catalogue service),

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

from typing import Any

from traitlets import Float, Integer, Unicode, validate
from traitlets.config import Config

from ..services import (
    PORT_FILE,
    ManagedService,
    hub_public_url,
    resolver_name,
)
from . import SERVICE_NAME
from .app import CONFIG_ENV
from .credentials import SERVICE_SCOPES

__all__ = ["PORT_FILE", "ROLE", "WorkflowService", "add_workflows_service"]

ROLE = f"{SERVICE_NAME}-service"


def _positive(name: str, value: Any) -> float:
    seconds = float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, not {seconds}")
    return seconds


class WorkflowService(ManagedService):
    """Batch runs of notebooks on the sites, as a hub-managed service."""

    service_name = SERVICE_NAME
    module = "continuum_hub.workflows"
    config_env = CONFIG_ENV
    url_env = "CONTINUUM_WORKFLOWS_URL"
    role_scopes = tuple(SERVICE_SCOPES)

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

    def process_config(self, c: Config) -> dict[str, Any]:
        """The service process's traitlets config (JSON-able; no secrets)."""
        settings: dict[str, Any] = {
            **self.base_settings(c),
            "poll_interval": self.poll_interval,
            "sign_in_interval": self.sign_in_interval,
            "max_credential_days": self.max_credential_days,
            "runs_root": self.runs_root,
            "hub_public_url": self.public_url.rstrip("/") or hub_public_url(c.JupyterHub),
        }
        resolver = resolver_name(c)
        if resolver is not None:
            settings["account_resolver_class"] = resolver
        sections = ("WorkflowLimits",)
        return self.with_sections(c, {"WorkflowsApp": settings}, sections)


def add_workflows_service(c: Config) -> WorkflowService | None:
    """Add the workflow service, its role, the users' scope and the servers' environment."""
    service = WorkflowService(config=c)
    return service if service.add_to(c) else None
