"""Harvesters: what feeds the built-in catalogue (issue 11).

:func:`harvest` reads one *spec* — a folder tree of data files on a site, a static STAC
catalogue, or a YAML/CSV list of datasets — into the built-in catalogue's store
(:class:`~continuum_hub.catalogue.index.store.CatalogueStore`), incrementally, and returns a
:class:`~.spec.HarvestReport` (seen, new, changed, removed, unchanged, problems, files/s).

* :mod:`.spec` — :class:`~.spec.HarvestSpec` (validated), the report, :class:`~.spec.HarvestError`;
* :mod:`.run` — the incremental algorithm (fingerprints, removals) and the two-sites rule: the
  same data under roots with the same label on two sites is one entry with two replicas;
* :mod:`.files` — the folder walk: symbolic links, bounds, ``catalogue.yaml`` and sidecars;
* :mod:`.readers` — what NetCDF/HDF5, Zarr, FITS, Parquet and ROOT files say in their headers,
  as a :class:`~.describe.Description` (:mod:`.describe`: the time rules too);
* :mod:`.stac` — static STAC catalogues (local files only); :mod:`.listing` — lists.

Identifiers are ``<site>/<label>/<path>`` (the label names the root: its folder's name unless
the spec gives one), e.g. ``beta/archive/radio/obs-0001.fits``; entries' ids are
``<source>:<identifier>``.  A file that cannot be read is a counted, logged problem and never
stops a harvest; a spec that cannot be harvested at all raises :class:`~.spec.HarvestError`
before anything changes.  The command line is ``continuum-hub catalogue harvest``
(:mod:`continuum_hub.catalogue.cli`).
"""

from .run import harvest
from .spec import HarvestError, HarvestReport, HarvestSpec

__all__ = ["HarvestError", "HarvestReport", "HarvestSpec", "harvest"]
