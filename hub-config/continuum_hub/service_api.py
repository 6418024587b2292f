"""What every Continuum service *process* shares (workflows, catalogue): settings, config, API.

The hub side of these services is :class:`continuum_hub.services.ManagedService`; the process
side is here:

* :class:`ServiceSettings` — the settings every service process has (address, state folder,
  database URL, site registry), subclassed by each service's ``…App``;
* :func:`config_from_environment` — the process's traitlets config, which the hub put in an
  environment variable as JSON (no secrets); :func:`state_folder` and
  :func:`hub_auth_from_environment`, the start of every process;
* :class:`HubServiceHandler` — the REST handlers' base: a hub token (``Authorization: token
  …``) checked by ``jupyterhub.services.auth.HubAuth`` (none or unknown → 401; without the
  service's access scope, or not a user's → 403), the caller's current groups read from the hub
  with the service's own token, JSON answers, and errors as ``{"message": …}`` with no stack
  trace (a service's *request error* type carries the user's message and its status);
* :class:`MetricsHandler` — ``GET <service prefix>/metrics``: the process's Prometheus metrics
  for a token with ``read:metrics`` (the scrape token of
  :class:`continuum_hub.metrics.MetricsScrape`), as the hub's ``/hub/metrics`` asks.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Integer, Unicode
from traitlets.config import Config, Configurable

from .workflows.credentials import HubError, HubUser

log = logging.getLogger(__name__)


class ServiceSettings(Configurable):
    """Settings every service process has (set by the hub from its ``ManagedService``)."""

    ip = Unicode("127.0.0.1", config=True, help="Address the REST API listens on.")
    port = Integer(0, config=True, help="Port the REST API listens on (chosen by the hub).")
    state_dir = Unicode(config=True, help="Folder (0700) of the service's database and state.")
    db_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the database; default: a SQLite file (0600) in state_dir.",
    )
    registry_path = Unicode(config=True, help="The site registry (SiteSpawner.registry_path).")


def serve_on(
    application: web.Application,
    settings: ServiceSettings,
    early: socket.socket | None,
    max_body_size: int,
) -> None:
    """Serve ``application`` on ``settings``' address: on ``early`` (the socket the process
    opened before its imports, :func:`~continuum_hub.process_start.listen_early`) when it is
    that address, else on a socket of its own."""
    if early is not None and early.getsockname()[:2] == (settings.ip, settings.port):
        early.setblocking(False)
        HTTPServer(application, max_body_size=max_body_size).add_sockets([early])
        return
    if early is not None:
        early.close()
    application.listen(settings.port, settings.ip, max_body_size=max_body_size)


def config_from_environment(name: str, what: str, environ: Mapping[str, str] | None) -> Config:
    """The process's traitlets config from the JSON in ``environ[name]`` (``what``: the service,
    for the message when it is missing)."""
    environ = os.environ if environ is None else environ
    if name not in environ:
        raise SystemExit(f"{name} is not set: {what} is started by the hub")
    return Config(json.loads(environ[name]))


def state_folder(path: str) -> Path:
    """The service's state folder, made when missing, 0700 (it holds the database)."""
    state = Path(path)
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    return state


def hub_auth_from_environment(hub_auth: Any = None) -> Any:
    """``hub_auth`` (tests pass theirs), else ``HubAuth`` from the hub's environment (the
    service's token in ``JUPYTERHUB_API_TOKEN``), token answers kept a minute."""
    if hub_auth is not None:
        return hub_auth
    from jupyterhub.services.auth import HubAuth

    return HubAuth(cache_max_age=60)


def openapi_document(
    title: str, description: str, prefix: str, schemas: Mapping[str, Any], paths: Mapping[str, Any]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a service's REST API under ``prefix``, authenticated by a
    hub token in the ``Authorization`` header (``token <hub API token>``)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "servers": [{"url": prefix}],
        "components": {
            "schemas": dict(schemas),
            "securitySchemes": {
                "hubToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "token <JupyterHub API token with access to the service>",
                }
            },
        },
        "security": [{"hubToken": []}],
        "paths": dict(paths),
    }


class HubServiceHandler(web.RequestHandler):
    """Authentication, the caller as a :class:`HubUser`, JSON answers and errors."""

    #: the scope a token needs (``access:services!service=NAME``)
    access_scope: ClassVar[str] = ""
    #: the service's name in messages ("the workflow service")
    service_label: ClassVar[str] = "the service"
    #: the exception whose message is the user's; its ``status`` attribute (else 400) is sent
    request_error: ClassVar[type[Exception]] = ValueError

    user: HubUser

    @property
    def hub_client(self) -> Any:
        """The hub's API with the service's token (``user(name)`` → :class:`HubUser`)."""
        raise NotImplementedError

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        auth = self.settings["hub_auth"]
        token = auth.get_token(self, in_cookie=False)
        if not token:
            self.set_header("WWW-Authenticate", 'token realm="jupyterhub"')
            raise web.HTTPError(401, "a hub API token is required (Authorization: token …)")
        model = await auth.user_for_token(token, sync=False)
        if not model:
            self.set_header("WWW-Authenticate", 'token realm="jupyterhub"')
            raise web.HTTPError(401, "the token is not valid (expired or revoked?)")
        scope = self.access_scope
        if not {scope, "access:services"} & set(model.get("scopes") or ()):
            raise web.HTTPError(403, f"this token may not use the service: it needs {scope}")
        if model.get("kind", "user") != "user":
            raise web.HTTPError(403, f"only users' tokens may use {self.service_label}")
        self.user = await self.hub_user(str(model["name"]))

    async def hub_user(self, name: str) -> HubUser:
        """The user ``name`` as the hub has them now (502 when the hub does not answer)."""
        try:
            return await self.hub_client.user(name)  # type: ignore[no-any-return]
        except HubError as exc:
            log.warning("Reading user %s from the hub: %s", name, exc)
            raise web.HTTPError(502, "the hub did not answer about this user") from None

    def body(self) -> Any:
        """The request's JSON body (``None`` when empty); 400 when it is not JSON."""
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "the request body is not JSON") from None

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, self.request_error):
            message = str(exc)
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = str(exc.log_message)
        elif status_code >= 500:
            message = f"{self.service_label} failed; see its log"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, self.request_error):
            status = getattr(e, "status", 400)
            self.send_error(status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, self.request_error | web.HTTPError):
            return  # the user's mistake (or a refusal), answered; not the service's
        super().log_exception(typ, value, tb)


#: the scope a token needs for a service's ``/metrics`` (as for the hub's ``/hub/metrics``)
METRICS_SCOPE = "read:metrics"


class MetricsHandler(web.RequestHandler):
    """``GET /metrics``: the process's metrics in Prometheus' text format.

    Any token the hub knows (a user's or a service's, e.g. the scraper's) with ``read:metrics``:
    none or unknown → 401, without the scope → 403.  The application's setting
    ``metrics_update`` (a callable, optional) refreshes gauges read at scrape time (batch runs
    by state) before the answer.
    """

    async def get(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        auth = self.settings["hub_auth"]
        token = auth.get_token(self, in_cookie=False)
        model = await auth.user_for_token(token, sync=False) if token else None
        if not model:
            self.set_header("WWW-Authenticate", 'token realm="jupyterhub"')
            raise web.HTTPError(401)
        if METRICS_SCOPE not in set(model.get("scopes") or ()):
            raise web.HTTPError(403)
        update: Callable[[], None] | None = self.settings.get("metrics_update")
        if update is not None:
            update()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(generate_latest(REGISTRY))
