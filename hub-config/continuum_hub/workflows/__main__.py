"""``python -m continuum_hub.workflows``: the workflow service process (see :mod:`.app`)."""

from .app import main

main()
