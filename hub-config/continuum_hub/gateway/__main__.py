"""``python -m continuum_hub.gateway``: the Dask Gateway service process (see :mod:`.app`)."""

from ..process_start import run_service

# its HTTP proxy (a Go binary) opens its own socket: none opened early
run_service("continuum_hub.gateway.app", listen=False)
