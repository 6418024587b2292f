"""``python -m continuum_hub.catalogue``: the catalogue service process (see :mod:`.app`)."""

from .app import main

main()
