"""Catalogues: datasets (the built-in index, Rucio, IVOA TAP) and software, searched in one place.

The ``catalogue`` hub service (issue 11) joins what its *sources* find:

* :mod:`.model` — :class:`~.model.Entry` (stable id ``source:identifier``), its
  :class:`~.model.Replica` s per site, a :class:`~.model.Query` with facets, a
  :class:`~.model.Page` of results, :class:`~.model.SourceHealth`; the visibility rule
  (:func:`~.model.visible`);
* :mod:`.sources` — :class:`~.sources.base.CatalogueSource`, the interface every source
  implements, and the sources registered by entry point (group ``continuum_hub.catalogue_sources``);
* :mod:`.harvest` — what feeds the built-in index: folder trees of data files, STAC catalogues,
  lists; :mod:`.cli` — ``continuum-hub catalogue harvest``.

Each source module documents what it reads and how it is configured.

The ``catalogue`` hub service built on them:

* :mod:`.service` — :class:`~.service.CatalogueService`, the hub side (a
  :class:`~continuum_hub.services.ManagedService`): the service entry, its role, the users' scope;
* :mod:`.app` — the service's process (``python -m continuum_hub.catalogue``): sources loaded
  by entry point or import string, started and stopped;
* :mod:`.fanout` — one search over the sources, each bounded by its timeout, merged by rank;
* :mod:`.api` — the REST handlers under ``/services/catalogue/api/v1/``; :mod:`.openapi` their
  OpenAPI document; :mod:`.store` — users' *make available* requests (SQLAlchemy).
"""

SERVICE_NAME = "catalogue"
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
#: entry point group through which a deployment adds a source kind without patching us
ENTRY_POINT_GROUP = "continuum_hub.catalogue_sources"
#: the REST API's prefix
API_PREFIX = f"{SERVICE_PREFIX}api/v1"
