"""The workflow service's process: ``python -m continuum_hub.workflows``, started by the hub.

Its configuration comes from the hub (:meth:`WorkflowService.process_config
<continuum_hub.workflows.service.WorkflowService.process_config>`) as traitlets config in JSON
in ``CONTINUUM_WORKFLOWS_CONFIG`` (sections ``WorkflowsApp``, ``WorkflowLimits`` and the account
resolver's); it holds no secret.  The service's hub token arrives in ``JUPYTERHUB_API_TOKEN``
(the hub sets it for managed services) and is used only in request headers, never logged.

On start the process opens the database (tables made if missing), resumes tracking every run
that is not final (:mod:`.tracking`) and serves the REST API (:mod:`.api`) on the address the
hub's proxy forwards ``/services/workflows/`` to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from typing import Any

from traitlets import Float, Integer, Type, Unicode
from traitlets.config import Config

from continuum_hub.logscrub import install_log_scrubber
from continuum_hub.service_api import (
    MetricsHandler,
    ServiceSettings,
    config_from_environment,
    hub_auth_from_environment,
    serve_on,
    state_folder,
)
from continuum_spawners.account_map import AccountMapper
from continuum_spawners.accounts import AccountResolver, shared_resolver
from continuum_spawners.sites import load_registry

from . import SERVICE_PREFIX

CONFIG_ENV = "CONTINUUM_WORKFLOWS_CONFIG"
#: largest request body (a notebook travels in it): the 16 MiB notebook plus the JSON around it
MAX_BODY_BYTES = 17 * 2**20


class WorkflowsApp(ServiceSettings):
    """Settings of the service process (set by the hub from ``WorkflowService``)."""

    poll_interval = Float(10.0, config=True, help="Seconds between two rounds of status queries.")
    sign_in_interval = Float(
        60.0, config=True, help="Seconds between two checks of a running run's credential."
    )
    max_credential_days = Integer(
        7, config=True, help="Lifetime in days of a run's hub token (revoked when the run ends)."
    )
    runs_root = Unicode(
        "~/continuum-runs",
        config=True,
        help="Folder of the run folders in the account's home at each site.",
    )
    hub_public_url = Unicode(
        "", config=True, help="The hub's public URL (the sign-in-again link shown on runs)."
    )
    account_resolver_class = Type(
        AccountMapper,
        klass=AccountResolver,
        config=True,
        help="Maps hub usernames to POSIX accounts per site (as SiteSpawner's).",
    )


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """The process's traitlets config from the hub (``CONTINUUM_WORKFLOWS_CONFIG``)."""
    return config_from_environment(CONFIG_ENV, "the workflow service", environ)


def make_application(
    config: Config, hub_auth: Any = None, executor: Any = None, hub: Any = None
) -> Any:
    """The tornado application with its manager, workflow book and tracker (not started).

    ``hub_auth``, ``executor`` and ``hub`` default to ``HubAuth`` (from the hub's
    environment), the site executor and a :class:`~.credentials.HubClient` with the service's
    token; tests pass their own at these boundaries.
    """
    from tornado import web

    from .api import handlers
    from .credentials import HubClient
    from .definitions import WorkflowBook
    from .manager import RunManager
    from .spec import WorkflowLimits
    from .store import Store
    from .tracking import Tracker

    settings = WorkflowsApp(config=config)
    state = state_folder(settings.state_dir)
    hub_auth = hub_auth_from_environment(hub_auth)
    if executor is None:
        from .executor import SiteExecutor

        # every poll asks each site afresh (one squeue per site per interval); a longer reuse
        # of the answer would show every job's start and end that much later
        executor = SiteExecutor(
            runs_root=settings.runs_root, status_max_age=settings.poll_interval / 2
        )
    store = Store(settings.db_url or f"sqlite:///{state / 'workflows.sqlite'}")
    hub = hub or HubClient(hub_auth.api_url, hub_auth.api_token)
    manager = RunManager(
        store,
        executor,
        hub,
        lambda: load_registry(settings.registry_path, max_age=5.0),
        shared_resolver(settings.account_resolver_class, config),
        state / "snapshots-store",
        limits=WorkflowLimits(config=config),
        hub_api_url=hub_auth.api_url,
        hub_public_url=settings.hub_public_url,
        max_credential_days=settings.max_credential_days,
    )
    book = WorkflowBook(manager)
    tracker = Tracker(manager, settings.poll_interval, settings.sign_in_interval, book)
    app_settings = {
        "hub_auth": hub_auth,
        "workflows_manager": manager,
        "workflows_book": book,
        "workflows_tracker": tracker,
    }
    app_settings["metrics_update"] = lambda: update_run_gauge(store)
    metrics = [(f"{SERVICE_PREFIX}/metrics", MetricsHandler, {})]
    application = web.Application([*metrics, *handlers(app_settings)], **app_settings)
    application.settings["workflows_settings"] = settings
    return application


def update_run_gauge(store: Any) -> None:
    """Set ``continuum_batch_runs`` from the database (read when Prometheus scrapes)."""
    from ..metrics import set_run_counts

    set_run_counts(store.run_counts())


async def serve(config: Config, early: socket.socket | None = None) -> None:
    """Serve the API and track runs until the process is stopped."""
    application = make_application(config)
    settings = application.settings["workflows_settings"]
    serve_on(application, settings, early, MAX_BODY_BYTES)
    logging.getLogger(__name__).info("Workflow service on http://%s:%d", settings.ip, settings.port)
    application.settings["workflows_tracker"].start()
    await asyncio.Event().wait()


def main(early: socket.socket | None = None) -> None:
    """Run the service until the hub stops it (on ``early``, the socket its entry point
    opened, when given)."""
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s"
    )
    # a ?token=… in a request's URL never reaches the log (tornado prints full URIs)
    install_log_scrubber()
    asyncio.run(serve(load_config(), early))
