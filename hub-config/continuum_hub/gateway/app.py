"""The gateway's process: ``python -m continuum_hub.gateway``, started by the hub as a service.

Its configuration comes from the hub (:meth:`GatewayService.gateway_config
<continuum_hub.gateway.service.GatewayService.gateway_config>`) as traitlets config in JSON in
the environment variable ``CONTINUUM_GATEWAY_CONFIG``; it holds no secret.  The secrets live in
the gateway's state folder (0700), each in a 0600 file created on first start:

``encrypt_key``
    Fernet key of the cluster database (tokens and TLS keys of clusters are stored encrypted);
``cookie_secret``
    Key of the dashboard sessions.

Its JupyterHub token reaches it from the hub through ``JUPYTERHUB_API_TOKEN``, the proxy's token
is made at each start and handed to the proxy in its environment: nothing secret is on a command
line.  The cluster database (``gateway.sqlite``, 0600, or ``GatewayService.db_url``) is on disk
and clusters are left running when the gateway stops, so a restarted gateway picks its live
clusters up again.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from traitlets.config import Config

from continuum_spawners.private_file import create_private

from .database import use_postgresql_types

CONFIG_ENV = "CONTINUUM_GATEWAY_CONFIG"


def private_secret(path: Path, make: Any) -> str:
    """The secret in ``path`` (0600), written atomically by ``make()`` on first use."""
    if path.exists():
        return path.read_text().strip()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make())
    tmp.replace(path)
    return path.read_text().strip()


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """The gateway's traitlets config: the hub's JSON plus the state folder's secrets."""
    environ = os.environ if environ is None else environ
    if CONFIG_ENV not in environ:
        raise SystemExit(f"{CONFIG_ENV} is not set: the gateway is started by the hub")
    data = json.loads(environ[CONFIG_ENV])
    state = Path(data.pop("ContinuumGateway")["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    key = private_secret(
        state / "encrypt_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    )
    cookie = state / "cookie_secret"
    private_secret(cookie, lambda: secrets.token_hex(32))
    config = Config(data)
    backend = config.SiteSlurmBackend
    if not backend.get("db_url"):  # GatewayService.db_url, else a private file in the state
        backend.db_url = f"sqlite:///{create_private(state / 'gateway.sqlite')}"
    use_postgresql_types(backend.db_url)  # dask-gateway-server's BINARY column
    backend.db_encrypt_keys = [key]
    backend.dashboard_cookie_secret_file = str(cookie)
    return config


def main() -> None:
    """Run the gateway until the hub stops it."""
    from dask_gateway_server.app import DaskGateway

    config = load_config()
    gateway = DaskGateway(config=config)
    gateway.initialize([])
    gateway.start()
