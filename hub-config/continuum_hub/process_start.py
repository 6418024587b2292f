"""What a service process of the hub does first, before its imports.

The managed services (``python -m continuum_hub.gateway``, ``.workflows``, ``.catalogue``)
start through :func:`run_service`: :func:`skip_slow_optional_imports` first, then (the workflow
and catalogue services) :func:`listen_early`, then their imports.  JupyterHub starts its managed
services one after the other and waits for each to answer, so their start-up adds up in the
hub's own start (``bench/hub_start.py``).

The hub itself: ``python -m continuum_hub.process_start -f jupyterhub_config.py`` is
``jupyterhub -f jupyterhub_config.py`` after :func:`skip_slow_optional_imports` (the deployed
unit runs it; the demo's supervisor calls the function in its warm spare, ``--setup``).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from urllib.parse import urlsplit

#: optional modules whose import costs more than what the service uses of them
SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    """Mark :data:`SLOW_OPTIONAL_MODULES` as absent in this process (before anything imports
    them), so that libraries which use them only if installed do without.

    ``rfc3987_syntax``: jsonschema (4.26) imports it, when installed, to check the ``iri`` and
    ``iri-reference`` formats, and it compiles some 35 Earley parsers at import: 0.8 s of each
    service's 1.3 s start on the 2-core test machine (python-jsonschema/jsonschema#1428).  No
    schema of ours uses those formats (nor a format checker); without the module jsonschema
    leaves them unchecked.  A module that is already imported is left alone.
    """
    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # "absent" to importlib


def listen_early(environ: dict[str, str] | None = None) -> socket.socket | None:
    """A listening socket on the service's address (``JUPYTERHUB_SERVICE_URL``, which the hub
    sets for a managed service with a URL), opened before the service's imports, or ``None``.

    JupyterHub checks a starting service with requests spaced 0.2, 0.4, 0.8, 1.6 … s apart
    (``exponential_backoff``): a service that starts listening just after a check is seen up
    to that much later, and the services' waits add up in the hub's start.  With the socket
    listening from the first moment, the hub's first check connects at once and is answered
    when the service's application serves the socket (``service_api.serve_on``), as with
    systemd's socket activation: nothing answers before the service is ready.
    """
    url = (os.environ if environ is None else environ).get("JUPYTERHUB_SERVICE_URL", "")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        return None
    family = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((parts.hostname, parts.port))
        sock.listen(128)
    except OSError:
        sock.close()
        return None  # the service's own listen() says what is wrong
    return sock


def run_service(app_module: str, *, listen: bool = True) -> None:
    """Run a managed service: :func:`skip_slow_optional_imports`, with ``listen`` open its
    socket at once (:func:`listen_early`; ``app_module``'s ``main(early)`` serves it), then
    import ``app_module`` and call its ``main``."""
    skip_slow_optional_imports()
    early = listen_early() if listen else None
    app = importlib.import_module(app_module)
    if listen:
        app.main(early)
    else:
        app.main()


def main() -> None:
    """``jupyterhub`` (its command line in ``sys.argv``) after
    :func:`skip_slow_optional_imports`: JupyterHub imports jsonschema through jupyter_events."""
    skip_slow_optional_imports()
    from jupyterhub.app import main as jupyterhub

    jupyterhub()


if __name__ == "__main__":
    main()
