"""``python -m continuum_hub.catalogue``: the catalogue service process (see :mod:`.app`)."""

from ..process_start import listen_early, skip_slow_optional_imports

skip_slow_optional_imports()
early = listen_early()  # before the imports: the hub's first check connects at once

from .app import main  # noqa: E402 - after the line above

main(early)
