"""``python -m continuum_hub.gateway``: the Dask Gateway service process (see :mod:`.app`)."""

from ..process_start import skip_slow_optional_imports

skip_slow_optional_imports()

from .app import main  # noqa: E402 - after the line above

main()
