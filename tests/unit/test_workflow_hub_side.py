"""The workflow service's hub side: the managed service entry, its role, users' scope, config.

The hub's config is built as ``jupyterhub_config.py`` builds it (``add_workflows_service``
after the layers); the process's own config is read back as the service reads it.
"""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
from traitlets.config import Config

from continuum_hub.gateway.service import add_gateway_service
from continuum_hub.workflows import ACCESS_SCOPE, SERVICE_NAME
from continuum_hub.workflows.app import CONFIG_ENV, WorkflowsApp, load_config
from continuum_hub.workflows.service import (
    PORT_FILE,
    ROLE,
    WorkflowService,
    add_workflows_service,
)
from fixtures.workflow_runs import DEMO

pytestmark = pytest.mark.workflows

HUB = "http://127.0.0.1:8000/"


def hub_config(**sections: dict) -> Config:
    """The hub's config after its layers: the demo registry, a bind URL, ``sections``."""
    base = {"SiteSpawner": {"registry_path": str(DEMO)}, "JupyterHub": {"bind_url": HUB}}
    return Config({**base, **sections})


def test_service_role_scopes_and_servers_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/etc/alpha/slurm.conf")
    c = hub_config(
        WorkflowService={"port": 9100, "state_dir": str(tmp_path), "poll_interval": 2},
        WorkflowLimits={"max_sweep_members": 50},
    )
    service = add_workflows_service(c)
    assert service is not None and service.url == "http://127.0.0.1:9100"
    (entry,) = c.JupyterHub.services
    assert entry["name"] == SERVICE_NAME and entry["url"] == "http://127.0.0.1:9100"
    assert entry["command"][1:] == ["-m", "continuum_hub.workflows"]
    env = entry["environment"]
    assert env["CONTINUUM_SLURM_CONF_ALPHA"] == "/etc/alpha/slurm.conf"
    config = json.loads(env[CONFIG_ENV])
    app = config["WorkflowsApp"]
    assert app["state_dir"] == str(tmp_path) and app["port"] == 9100
    assert app["registry_path"] == str(DEMO) and app["poll_interval"] == 2
    assert app["hub_public_url"] == "http://127.0.0.1:8000" and app["max_credential_days"] == 7
    assert config["WorkflowLimits"] == {"max_sweep_members": 50}
    assert "token" not in env[CONFIG_ENV].lower()
    # the service may read users' groups and mint their run tokens; nothing more
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == ROLE)
    assert role == {
        "name": ROLE,
        "scopes": ["read:users", "read:users:groups", "tokens"],
        "services": [SERVICE_NAME],
    }
    # users and their servers' tokens may call it; servers know where it is
    assert ACCESS_SCOPE in c.JupyterHub.extra_user_scopes
    assert ACCESS_SCOPE in c.Spawner.server_token_scopes
    server = next(r for r in c.JupyterHub.load_roles if r["name"] == "server")
    assert ACCESS_SCOPE in server["scopes"]
    assert c.Spawner.environment == {
        "CONTINUUM_WORKFLOWS_URL": "http://127.0.0.1:9100/services/workflows/"
    }
    # the process reads the same settings back
    settings = WorkflowsApp(config=load_config({CONFIG_ENV: env[CONFIG_ENV]}))
    assert settings.poll_interval == 2 and settings.registry_path == str(DEMO)
    # loading the config twice adds nothing twice
    assert add_workflows_service(c) is None and len(c.JupyterHub.services) == 1


def test_gateway_and_workflows_share_the_server_role(tmp_path: Path) -> None:
    c = hub_config(
        GatewayService={"port": 9001, "tcp_port": 9002, "api_port": 9003},
        WorkflowService={"state_dir": str(tmp_path)},
    )
    add_gateway_service(c)
    add_workflows_service(c)
    (server,) = [r for r in c.JupyterHub.load_roles if r["name"] == "server"]
    assert {"access:services!service=dask-gateway", ACCESS_SCOPE} <= set(server["scopes"])
    assert {"access:services!service=dask-gateway", ACCESS_SCOPE} <= set(
        c.Spawner.server_token_scopes
    )
    assert {"CONTINUUM_WORKFLOWS_URL", "DASK_GATEWAY__ADDRESS"} <= set(c.Spawner.environment)


def test_the_port_is_kept_across_restarts_of_the_hub(tmp_path: Path) -> None:
    def load() -> tuple[int, str]:
        c = hub_config(WorkflowService={"state_dir": str(tmp_path / "state")})
        service = add_workflows_service(c)
        assert service is not None and c.JupyterHub.services[0]["url"] == service.url
        return service.port, c.Spawner.environment["CONTINUUM_WORKFLOWS_URL"]

    port, url = load()
    kept = tmp_path / "state" / PORT_FILE
    assert json.loads(kept.read_text()) == {"port": port} and f":{port}/" in url
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert load() == (port, url)  # the hub restarted: servers' URL still right
    with socket.socket() as taken:  # someone else has it now: a new one, kept from now on
        taken.bind(("127.0.0.1", port))
        taken.listen()
        other, _ = load()
    assert other != port and json.loads(kept.read_text()) == {"port": other}


def test_disabled_and_bad_settings() -> None:
    c = hub_config(WorkflowService={"enabled": False})
    assert add_workflows_service(c) is None and "services" not in c.JupyterHub
    with pytest.raises(ValueError, match="max_credential_days must be between 1 and 366"):
        WorkflowService(config=hub_config(WorkflowService={"max_credential_days": 0}))
    with pytest.raises(ValueError, match="poll_interval must be positive"):
        WorkflowService(config=hub_config(WorkflowService={"poll_interval": 0}))
    with pytest.raises(SystemExit, match="CONTINUUM_WORKFLOWS_CONFIG is not set"):
        load_config({})
    with pytest.raises(SystemExit, match="needs the site registry"):
        WorkflowService(config=Config()).process_config(Config())
