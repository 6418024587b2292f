"""Catalogues: datasets (the built-in index, Rucio, IVOA TAP) and software, searched in one place.

The ``catalogue`` hub service (issue 11) joins what its *sources* find:

* :mod:`.model` — :class:`~.model.Entry` (stable id ``source:identifier``), its
  :class:`~.model.Replica` s per site, a :class:`~.model.Query` with facets, a
  :class:`~.model.Page` of results, :class:`~.model.SourceHealth`; the visibility rule
  (:func:`~.model.visible`);
* :mod:`.sources` — :class:`~.sources.base.CatalogueSource`, the interface every source
  implements, and the sources registered by entry point (group ``continuum_hub.catalogue_sources``).

Each source module documents what it reads and how it is configured.
"""

SERVICE_NAME = "catalogue"
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
#: entry point group through which a deployment adds a source kind without patching us
ENTRY_POINT_GROUP = "continuum_hub.catalogue_sources"
