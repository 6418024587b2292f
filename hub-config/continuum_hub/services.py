"""Hub-managed services that Continuum Hub adds to every deployment.

Added by :func:`add_managed_services` after all configuration layers are loaded, so a
deployment's own ``JupyterHub.services`` / ``load_roles`` (which replace lists, not extend them)
keep them.  Configured through the ``CullerService`` section.
"""

from __future__ import annotations

import sys
from typing import Any

from traitlets import Bool, Int
from traitlets.config import Config, Configurable

CULLER = "idle-culler"
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


class CullerService(Configurable):
    """``jupyterhub-idle-culler`` as a managed service: idle servers are stopped, and stopping a
    server cancels its batch job, so no Slurm job outlives an abandoned session."""

    enabled = Bool(True, config=True, help="Run the idle culler.")
    timeout = Int(
        3600,
        config=True,
        help="Seconds without activity after which a server is stopped (its job cancelled).",
    )
    cull_every = Int(
        0,
        config=True,
        help="Seconds between the culler's checks; 0 means half of ``timeout``.",
    )
    max_age = Int(
        0,
        config=True,
        help="Seconds after which a server is stopped even if active; 0 means never "
        "(a job's walltime ends it anyway).",
    )

    def service(self) -> dict[str, Any]:
        """The ``JupyterHub.services`` entry."""
        every = self.cull_every or max(1, self.timeout // 2)
        return {
            "name": CULLER,
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={self.timeout}",
                f"--cull-every={every}",
                f"--max-age={self.max_age}",
            ],
        }


def add_managed_services(c: Config) -> None:
    """Append the managed services and their roles to ``c`` (idempotent)."""
    culler = CullerService(config=c)
    if not culler.enabled:
        return
    hub = c.JupyterHub
    services = list(hub.services) if "services" in hub else []
    roles = list(hub.load_roles) if "load_roles" in hub else []
    if not any(s.get("name") == CULLER for s in services):
        services.append(culler.service())
    if not any(r.get("name") == CULLER for r in roles):
        roles.append({"name": CULLER, "scopes": CULLER_SCOPES, "services": [CULLER]})
    hub.services = services
    hub.load_roles = roles
