"""Continuum Hub in the user's JupyterLab: the ``continuum_lab`` jupyter-server extension.

Enabled by ``etc/jupyter/jupyter_server_config.d/continuum_lab.json`` (installed from the wheel);
the lab extensions of ``extensions/<name>/`` call its routes below ``{base_url}continuum/``.
Loading the extension registers the handlers and, in a hub server, writes the first access
token to ``BEARER_TOKEN_FILE``; starting it keeps that file fresh.  Importing this package does
nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The server extension this package provides (read by jupyter-server)."""
    return [{"module": "continuum_lab"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    """Build the managers from the server's config and register the handlers.

    Parameters
    ----------
    serverapp
        The running Jupyter server.
    """
    from .catalogue import CatalogueManager
    from .clusters import ClusterManager
    from .config import ContinuumLab
    from .handlers import setup_handlers
    from .job import JobInfoManager
    from .usage import UsageManager
    from .workflows import WorkflowsManager
    from .workshop import WorkshopManager

    lab = ContinuumLab(parent=serverapp)
    manager = JobInfoManager(parent=lab, log=serverapp.log)
    clusters = ClusterManager(parent=lab, log=serverapp.log)
    workflows = WorkflowsManager(parent=lab, log=serverapp.log)
    catalogue = CatalogueManager(parent=lab, log=serverapp.log)
    usage = UsageManager(parent=lab, log=serverapp.log)
    workshop = WorkshopManager(parent=lab, log=serverapp.log)
    setup_handlers(
        serverapp.web_app,
        lab=lab,
        job_info=manager,
        clusters=clusters,
        workflows=workflows,
        catalogue=catalogue,
        usage=usage,
        workshop=workshop,
    )
    serverapp.log.info(
        "continuum_lab: routes below %scontinuum/ (warnings at %s min)",
        serverapp.base_url,
        ", ".join(str(m) for m in lab.warning_minutes),
    )
    # --- living tokens (BEARER_TOKEN_FILE) ---
    from .tokens import keeper_for_server

    keeper = keeper_for_server(
        os.environ,
        log=serverapp.log,
        fraction=lab.token_refresh_fraction,
        min_delay=lab.token_min_interval,
        timeout=lab.hub_timeout,
    )
    if keeper is not None:
        # the first token is in place before the server answers (kernels inherit the path)
        try:
            delay = keeper.pull_once()
        except OSError as exc:
            serverapp.log.error("continuum token: cannot write %s: %s", keeper.path, exc)
            delay = keeper.min_delay
        atexit.register(keeper.remove_file)
        serverapp.web_app.settings["continuum_token_keeper"] = (keeper, delay)


async def _start_jupyter_server_extension(serverapp: ServerApp) -> None:
    """Start the task that keeps ``BEARER_TOKEN_FILE`` fresh (the event loop runs now)."""
    from .tokens import run_periodically

    settings = serverapp.web_app.settings
    if "continuum_token_keeper" in settings:
        keeper, delay = settings["continuum_token_keeper"]
        # a reference to the task is kept: the loop holds only weak ones
        settings["continuum_token_task"] = asyncio.ensure_future(run_periodically(keeper, delay))
