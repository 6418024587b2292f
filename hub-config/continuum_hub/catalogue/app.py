"""The catalogue service's process: ``python -m continuum_hub.catalogue``, started by the hub.

Its configuration comes from the hub (:meth:`CatalogueService.process_config
<continuum_hub.catalogue.service.CatalogueService.process_config>`) as traitlets config in JSON
in ``CONTINUUM_CATALOGUE_CONFIG`` (section ``CatalogueApp``, plus any section a source kind
reads); it holds no secret.  The service's hub token arrives in ``JUPYTERHUB_API_TOKEN`` and is
used only in request headers, never logged.

Sources: ``CatalogueApp.sources`` lists them, each a dict ``{"name", "kind", …settings}``.  The
kind is an entry point name in the group ``continuum_hub.catalogue_sources`` (ours:
``builtin``, ``rucio``, ``tap``, ``software``) or an import string (``package.module:Class``);
the other keys are the source class's configurable traits (a key it does not have is refused).
A source that cannot be loaded or started does not stop the service: it stays listed, unhealthy,
with the reason (:class:`BrokenSource`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from traitlets import Float, List, Unicode
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
from continuum_spawners.sites import load_registry

from . import ENTRY_POINT_GROUP, SERVICE_PREFIX
from .model import SOURCE_NAME
from .sources.base import CatalogueSource, SourceUnavailable

CONFIG_ENV = "CONTINUUM_CATALOGUE_CONFIG"
#: largest request body the API takes (make-available requests are tiny)
MAX_BODY_BYTES = 64 * 1024
#: seconds a source may take to start before it is reported as not started
START_TIMEOUT = 120.0
#: the default sources: the built-in index (issue 11's embedded catalogue)
DEFAULT_SOURCES = [{"name": "demo", "kind": "builtin"}]

log = logging.getLogger(__name__)


class CatalogueApp(ServiceSettings):
    """Settings of the service process (set by the hub from ``CatalogueService``)."""

    sources = List(
        DEFAULT_SOURCES,
        config=True,
        help="The sources: dicts with ``name``, ``kind`` and the kind's settings.",
    )
    search_timeout = Float(
        5.0,
        config=True,
        help="Seconds a source may take to answer (its own ``timeout`` setting wins).",
    )


class BrokenSource(CatalogueSource):
    """Stands for a configured source that could not be loaded or started: always unhealthy."""

    kind = "broken"
    reason = Unicode("", config=True, help="Why the source is not working.")

    async def search(self, query: Any) -> Any:
        raise SourceUnavailable(self.reason)

    async def get(self, identifier: str, query: Any) -> Any:
        raise SourceUnavailable(self.reason)

    async def health(self) -> Any:
        raise SourceUnavailable(self.reason)


def source_class(kind: str) -> type[CatalogueSource]:
    """The class of source kind ``kind``: an entry point's name, else an import string."""
    found = entry_points(group=ENTRY_POINT_GROUP, name=kind)
    if found:
        cls = next(iter(found)).load()
    elif ":" in kind or "." in kind:
        module, _, name = kind.replace(":", ".").rpartition(".")
        cls = getattr(import_module(module), name)
    else:
        raise ValueError(f"unknown source kind {kind!r} (no entry point of that name)")
    if not (isinstance(cls, type) and issubclass(cls, CatalogueSource)):
        raise TypeError(f"{kind} is not a CatalogueSource")
    return cls


def make_source(spec: Mapping[str, Any], settings: CatalogueApp) -> CatalogueSource:
    """The source described by ``spec``; :class:`ValueError` when it is wrong."""
    spec = dict(spec)
    name, kind = str(spec.pop("name", "")), str(spec.pop("kind", ""))
    if not SOURCE_NAME.match(name):
        raise ValueError(f"a catalogue source's name must match {SOURCE_NAME.pattern}: {name!r}")
    cls = source_class(kind)
    allowed = set(cls.class_trait_names(config=True))
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"source {name}: {cls.__name__} has no setting {unknown[0]!r}")
    spec.setdefault("timeout", settings.search_timeout)
    # parent: a source reads the app's settings (state_dir) and its config sections
    return cls(parent=settings, name=name, **spec)


def load_sources(settings: CatalogueApp) -> dict[str, CatalogueSource]:
    """The configured sources by name, in order; a wrong one becomes a :class:`BrokenSource`."""
    sources: dict[str, CatalogueSource] = {}
    for spec in settings.sources:
        name = str(spec.get("name", "")) if isinstance(spec, Mapping) else ""
        if not SOURCE_NAME.match(name) or name in sources:
            raise SystemExit(f"CatalogueApp.sources: a missing, invalid or repeated name {name!r}")
        try:
            sources[name] = make_source(spec, settings)
        except Exception as exc:  # a site's source kind: any failure, reported, not fatal
            log.error("Catalogue source %s not loaded: %s", name, exc)
            sources[name] = BrokenSource(
                parent=settings, name=name, reason=f"not loaded: {exc}"[:300]
            )
    return sources


async def start_sources(sources: dict[str, CatalogueSource]) -> None:
    """Start every source (concurrently); one that fails is replaced by a broken one."""

    async def start(name: str, source: CatalogueSource) -> None:
        try:
            await asyncio.wait_for(source.start(), START_TIMEOUT)
        except TimeoutError:
            log.error("Catalogue source %s did not start within %g s", name, START_TIMEOUT)
            sources[name] = BrokenSource(
                parent=source.parent, name=name, reason=f"did not start in {START_TIMEOUT:g} s"
            )
        except Exception as exc:
            log.exception("Catalogue source %s did not start", name)
            sources[name] = BrokenSource(
                parent=source.parent, name=name, reason=f"did not start: {exc}"[:300]
            )

    await asyncio.gather(*(start(name, source) for name, source in list(sources.items())))


async def stop_sources(sources: dict[str, CatalogueSource]) -> None:
    """Stop every source; failures are logged."""
    for name, source in sources.items():
        try:
            await source.stop()
        except Exception:
            log.exception("Catalogue source %s did not stop cleanly", name)


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """The process's traitlets config from the hub (``CONTINUUM_CATALOGUE_CONFIG``)."""
    return config_from_environment(CONFIG_ENV, "the catalogue service", environ)


def make_application(config: Config, hub_auth: Any = None, hub: Any = None) -> Any:
    """The tornado application with its store and (not yet started) sources.

    ``hub_auth`` and ``hub`` default to ``HubAuth`` (from the hub's environment) and a
    :class:`~continuum_hub.workflows.credentials.HubClient` with the service's token (users'
    groups); tests pass their own at these boundaries.
    """
    from tornado import web

    from ..workflows.credentials import HubClient
    from .api import handlers
    from .store import Store

    settings = CatalogueApp(config=config)
    state = state_folder(settings.state_dir)
    hub_auth = hub_auth_from_environment(hub_auth)
    app_settings = {
        "hub_auth": hub_auth,
        "catalogue_hub": hub or HubClient(hub_auth.api_url, hub_auth.api_token),
        "catalogue_store": Store(settings.db_url or f"sqlite:///{state / 'catalogue.sqlite'}"),
        "catalogue_sources": load_sources(settings),
        "catalogue_registry": lambda: load_registry(settings.registry_path, max_age=5.0),
        "catalogue_settings": settings,
    }
    metrics = [(f"{SERVICE_PREFIX}metrics", MetricsHandler)]
    return web.Application([*metrics, *handlers()], **app_settings)


async def serve(config: Config, early: socket.socket | None = None) -> None:
    """Start the sources and serve the API until the process is stopped."""
    application = make_application(config)
    settings = application.settings["catalogue_settings"]
    sources = application.settings["catalogue_sources"]
    await start_sources(sources)
    serve_on(application, settings, early, MAX_BODY_BYTES)
    log.info("Catalogue service on http://%s:%d (%s)", settings.ip, settings.port, list(sources))
    try:
        await asyncio.Event().wait()
    finally:
        await stop_sources(sources)


def main(early: socket.socket | None = None) -> None:
    """Run the service until the hub stops it (on ``early``, the socket its entry point
    opened, when given)."""
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s"
    )
    # a ?token=… in a request's URL never reaches the log (tornado prints full URIs)
    install_log_scrubber()
    asyncio.run(serve(load_config(), early))
