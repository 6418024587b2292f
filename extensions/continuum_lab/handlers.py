"""HTTP routes of ``continuum_lab``: thin, authenticated handlers over the managers.

Every route lives below ``{base_url}continuum/``; every method requires the user's login
(``tests/lab/test_routes_auth.py`` walks :data:`ROUTES` without credentials and expects 403).
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .config import ContinuumLab
from .job import JobInfoManager

NAMESPACE = "continuum"


class ContinuumHandler(APIHandler):
    """Base of the extension's handlers: gives them the managers.

    Subclasses stay thin (parse, call a manager, answer JSON) and decorate every HTTP method
    with ``@web.authenticated``.
    """

    def initialize(self, lab: ContinuumLab, job_info: JobInfoManager) -> None:
        """Receive the managers (tornado calls this with the route's keyword arguments)."""
        self.lab = lab
        self.job_info = job_info


class SessionHandler(ContinuumHandler):
    """``GET /continuum/session``: the job behind this server and the warning settings."""

    @web.authenticated
    async def get(self) -> None:
        info = await self.job_info.current()
        body: dict[str, Any] = info.to_json(self.job_info.now())
        body["settings"] = self.lab.frontend_settings()
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


# (path below {base_url}continuum/, handler class); the auth test walks this table
ROUTES: list[tuple[str, type[ContinuumHandler]]] = [
    ("session", SessionHandler),
]


def setup_handlers(web_app: web.Application, **managers: Any) -> None:
    """Register :data:`ROUTES` on the server's application.

    Parameters
    ----------
    web_app
        The Jupyter server's tornado application.
    **managers
        Passed to every handler's ``initialize`` (``lab``, ``job_info``).
    """
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, NAMESPACE, path), cls, managers) for path, cls in ROUTES],
    )
