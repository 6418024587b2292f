"""Continuum Hub in the user's JupyterLab: the ``continuum_lab`` jupyter-server extension.

Enabled by ``etc/jupyter/jupyter_server_config.d/continuum_lab.json`` (installed from the wheel);
the lab extensions of ``extensions/<name>/`` call its routes below ``{base_url}continuum/``.
Loading the extension registers the handlers; importing this package does nothing.
"""

from __future__ import annotations

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
    from .config import ContinuumLab
    from .handlers import setup_handlers
    from .job import JobInfoManager

    lab = ContinuumLab(parent=serverapp)
    manager = JobInfoManager(parent=lab, log=serverapp.log)
    setup_handlers(serverapp.web_app, lab=lab, job_info=manager)
    serverapp.log.info(
        "continuum_lab: routes below %scontinuum/ (warnings at %s min)",
        serverapp.base_url,
        ", ".join(str(m) for m in lab.warning_minutes),
    )
