"""The hub side of the catalogue service: managed service, its role, users' and servers' scope.

:func:`add_catalogue_service` (called by ``hub-config/jupyterhub_config.py`` after all layers,
like the workflow service's) reads the ``CatalogueService`` section and, through
:class:`~continuum_hub.services.ManagedService`,

* adds the managed service ``catalogue`` (``python -m continuum_hub.catalogue``) behind the
  hub's proxy at ``/services/catalogue/``, on 127.0.0.1 and a port kept across the hub's
  restarts (``state_dir/service-port.json``), its configuration (no secrets) in its environment
  (:data:`.app.CONFIG_ENV`);
* gives the service the role ``catalogue-service``: ``read:users`` and ``read:users:groups``
  (it reads the caller's groups from the hub — never from the request — to decide what the
  caller sees and at which sites they may ask for copies);
* gives every user ``access:services!service=catalogue`` and puts it in the token of every
  server, and sets ``CONTINUUM_CATALOGUE_URL`` in the servers' environment (the lab's catalogue
  panel calls the service from the user's server).

The hub restarts the service when it stops; users' *make available* requests are kept in its
database (a SQLite file 0600 in ``state_dir`` by default, any SQLAlchemy URL with ``db_url``).
"""

from __future__ import annotations

from typing import Any

from traitlets import Float, List, Unicode, validate
from traitlets.config import Config

from ..services import ManagedService
from . import SERVICE_NAME
from .app import CONFIG_ENV, DEFAULT_SOURCES
from .model import SOURCE_NAME


class CatalogueService(ManagedService):
    """Datasets and software from the configured sources, searched at once, as a hub service."""

    service_name = SERVICE_NAME
    module = "continuum_hub.catalogue"
    config_env = CONFIG_ENV
    url_env = "CONTINUUM_CATALOGUE_URL"
    role_scopes = ("read:users", "read:users:groups")

    state_dir = Unicode(
        "",
        config=True,
        help="""Folder (0700) of the service's database and its sources' state (the built-in
        index).  Default: ``catalogue`` in the hub's working folder.""",
    )
    db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the requests' database (e.g. ``postgresql+psycopg://…``).
        Default: ``sqlite:///<state_dir>/catalogue.sqlite`` (file 0600).""",
    )
    sources = List(
        DEFAULT_SOURCES,
        config=True,
        help="""The catalogue's sources, searched together: a list of dicts with ``name`` (the
        prefix of its entries' ids), ``kind`` (``builtin``, ``rucio``, ``tap``, ``software``, a
        site's entry point name in ``continuum_hub.catalogue_sources``, or an import string
        ``package.module:Class``) and the kind's settings (e.g. ``timeout``).  Default: the
        built-in index, named ``demo``.""",
    )
    search_timeout = Float(
        5.0,
        config=True,
        help="""Seconds a source may take to answer a search or a lookup before it is reported
        as timed out (a source's own ``timeout`` setting wins). Default 5.""",
    )

    @validate("sources")
    def _validate_sources(self, proposal: Any) -> list[dict[str, Any]]:
        names = set()
        for spec in proposal["value"]:
            name = spec.get("name") if isinstance(spec, dict) else None
            if not isinstance(name, str) or not SOURCE_NAME.match(name) or name in names:
                raise ValueError(
                    f"each catalogue source needs a unique name (a lowercase word): {name!r}"
                )
            if not isinstance(spec.get("kind"), str) or not spec["kind"]:
                raise ValueError(f"catalogue source {name} needs a kind")
            names.add(name)
        return list(proposal["value"])

    @validate("search_timeout")
    def _validate_search_timeout(self, proposal: Any) -> float:
        seconds = float(proposal["value"])
        if not 0 < seconds <= 300:
            raise ValueError(f"search_timeout must be between 0 and 300 s, not {seconds}")
        return seconds

    def process_config(self, c: Config) -> dict[str, Any]:
        """The service process's traitlets config (JSON-able; no secrets)."""
        settings: dict[str, Any] = {
            **self.base_settings(c),
            "sources": self.sources,
            "search_timeout": self.search_timeout,
        }
        return self.with_sections(c, {"CatalogueApp": settings}, ())


def add_catalogue_service(c: Config) -> CatalogueService | None:
    """Add the catalogue service, its role, the users' scope and the servers' environment."""
    service = CatalogueService(config=c)
    return service if service.add_to(c) else None
