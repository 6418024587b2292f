"""``python -m continuum_hub.catalogue``: the catalogue service process (see :mod:`.app`)."""

from ..process_start import run_service

run_service("continuum_hub.catalogue.app")
