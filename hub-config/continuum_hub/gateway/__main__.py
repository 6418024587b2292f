"""``python -m continuum_hub.gateway``: the Dask Gateway service process (see :mod:`.app`)."""

from .app import main

main()
