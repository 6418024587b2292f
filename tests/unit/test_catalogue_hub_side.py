"""The catalogue service's hub side and its process's sources: entry, role, scope, loading.

The hub's config is built as ``jupyterhub_config.py`` builds it (``add_catalogue_service`` after
the layers, with the workflow service's: both are ``ManagedService`` s); the process's config is
read back as the service reads it, and its sources made from their settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from continuum_federation.static_catalogue import StaticSource
from continuum_hub.catalogue import ACCESS_SCOPE, SERVICE_NAME
from continuum_hub.catalogue.app import (
    CONFIG_ENV,
    BrokenSource,
    CatalogueApp,
    load_config,
    load_sources,
    source_class,
)
from continuum_hub.catalogue.service import CatalogueService, add_catalogue_service
from continuum_hub.services import PORT_FILE
from continuum_hub.workflows.service import add_workflows_service
from fixtures.workflow_runs import DEMO

pytestmark = pytest.mark.catalogue

STATIC = "continuum_federation.static_catalogue:StaticSource"


def hub_config(**sections: dict) -> Config:
    base = {
        "SiteSpawner": {"registry_path": str(DEMO)},
        "JupyterHub": {"bind_url": "http://127.0.0.1:8000/"},
    }
    return Config({**base, **sections})


def test_service_entry_role_scope_and_servers_environment(tmp_path: Path) -> None:
    sources = [{"name": "demo", "kind": STATIC, "timeout": 2}]
    c = hub_config(
        CatalogueService={"state_dir": str(tmp_path / "cat"), "sources": sources},
        WorkflowService={"state_dir": str(tmp_path / "wf")},
    )
    workflows = add_workflows_service(c)
    service = add_catalogue_service(c)
    assert workflows is not None and service is not None
    # a port chosen once and kept for the next start of the hub, not the workflow service's
    kept = json.loads((tmp_path / "cat" / PORT_FILE).read_text())["port"]
    assert service.port == kept != workflows.port
    entry = next(s for s in c.JupyterHub.services if s["name"] == SERVICE_NAME)
    assert entry["url"] == f"http://127.0.0.1:{kept}"
    assert entry["command"][1:] == ["-m", "continuum_hub.catalogue"]
    settings = json.loads(entry["environment"][CONFIG_ENV])["CatalogueApp"]
    assert settings["sources"] == sources and settings["registry_path"] == str(DEMO)
    assert settings["state_dir"] == str(tmp_path / "cat") and settings["port"] == kept
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "catalogue-service")
    assert role == {
        "name": "catalogue-service",
        "scopes": ["read:users", "read:users:groups"],
        "services": [SERVICE_NAME],
    }
    assert ACCESS_SCOPE in c.JupyterHub.extra_user_scopes
    assert ACCESS_SCOPE in c.Spawner.server_token_scopes
    assert c.Spawner.environment["CONTINUUM_CATALOGUE_URL"] == (
        f"http://127.0.0.1:{kept}/services/catalogue/"
    )
    assert c.Spawner.environment["CONTINUUM_WORKFLOWS_URL"].endswith("/services/workflows/")
    # the process reads the same settings back
    app = CatalogueApp(config=load_config({CONFIG_ENV: entry["environment"][CONFIG_ENV]}))
    assert app.sources == sources and app.search_timeout == 5.0
    # loading the config twice adds nothing twice; disabled adds nothing
    assert add_catalogue_service(c) is None
    assert [s["name"] for s in c.JupyterHub.services].count(SERVICE_NAME) == 1
    off = hub_config(CatalogueService={"enabled": False})
    assert add_catalogue_service(off) is None and "services" not in off.JupyterHub


@pytest.mark.parametrize(
    "sources",
    [
        [{"name": "Demo", "kind": "builtin"}],
        [{"name": "a", "kind": "builtin"}, {"name": "a", "kind": "tap"}],
        [{"name": "a"}],
    ],
)
def test_sources_need_unique_names_and_kinds(sources: list) -> None:
    with pytest.raises(ValueError, match="catalogue source"):
        CatalogueService(sources=sources)


def test_the_default_source_is_the_builtin_index() -> None:
    assert CatalogueService().sources == [{"name": "demo", "kind": "builtin"}]


def test_sources_by_entry_point_or_import_string_and_broken_ones_reported(
    tmp_path: Path,
) -> None:
    assert source_class(STATIC) is StaticSource
    assert source_class("continuum_federation.static_catalogue.StaticSource") is StaticSource
    assert source_class("builtin").__name__ == "BuiltinSource"  # our entry point
    config = Config(
        {
            "CatalogueApp": {
                "state_dir": str(tmp_path),
                "search_timeout": 3,
                "sources": [
                    {"name": "one", "kind": STATIC, "entries": []},
                    {"name": "two", "kind": STATIC, "timeout": 0.5},
                    {"name": "three", "kind": STATIC, "no_such_setting": 1},
                    {"name": "four", "kind": "json:JSONDecoder"},
                ],
            }
        }
    )
    sources = load_sources(CatalogueApp(config=config))
    assert list(sources) == ["one", "two", "three", "four"]
    assert sources["one"].timeout == 3 and sources["two"].timeout == 0.5
    assert isinstance(sources["three"], BrokenSource)
    assert "no setting 'no_such_setting'" in sources["three"].reason
    assert isinstance(sources["four"], BrokenSource)
    assert "not a CatalogueSource" in sources["four"].reason
