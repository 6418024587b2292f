"""``python -m continuum_hub.workflows``: the workflow service process (see :mod:`.app`)."""

from ..process_start import run_service

run_service("continuum_hub.workflows.app")
