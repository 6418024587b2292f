"""Helpers of the layered hub configuration."""

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from continuum_hub.config import check_site_registry, layer_files, load_json_layer

HUB_CONFIG = Path(__file__).resolve().parents[2] / "hub-config"


def test_layers_in_name_order():
    names = [p.name for p in layer_files(HUB_CONFIG / "jupyterhub_config.d")]
    assert names == sorted(names) and names[0].startswith("10-")


def test_json_layer_merges_over_the_layers(tmp_path):
    path = tmp_path / "deploy.json"
    path.write_text(json.dumps({"JupyterHub": {"bind_url": "http://127.0.0.1:9"}}))
    c = Config()
    c.JupyterHub.bind_url = "http://127.0.0.1:8000"
    c.JupyterHub.hub_ip = "127.0.0.1"
    load_json_layer(c, {"CONTINUUM_HUB_CONFIG": str(path)})
    assert c.JupyterHub.bind_url == "http://127.0.0.1:9"
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    load_json_layer(c, {})  # unset: nothing to do
    with pytest.raises(SystemExit, match="no such file"):
        load_json_layer(c, {"CONTINUUM_HUB_CONFIG": str(tmp_path / "missing.json")})


def test_invalid_registry_stops_the_hub_with_a_message(tmp_path, monkeypatch):
    bad = tmp_path / "sites.yaml"
    bad.write_text("sites: []\n")
    c = Config()
    check_site_registry(c)  # not configured: nothing to check
    c.SiteSpawner.registry_path = str(bad)
    with pytest.raises(SystemExit, match=r"Invalid site registry .*sites\.yaml"):
        check_site_registry(c)
    monkeypatch.delenv("CONTINUUM_SLURM_CONF_BETA", raising=False)
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/a.conf")
    c.SiteSpawner.registry_path = str(HUB_CONFIG / "sites.demo.yaml")
    with pytest.raises(SystemExit, match="CONTINUUM_SLURM_CONF_BETA is not set"):
        check_site_registry(c)


def test_managed_services_are_appended_to_the_deployments_own():
    from continuum_hub.services import add_managed_services

    c = Config()
    c.JupyterHub.services = [{"name": "mine", "api_token": "x" * 32}]
    c.CullerService.timeout = 600
    add_managed_services(c)
    add_managed_services(c)  # idempotent
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["mine", "idle-culler"]
    culler = c.JupyterHub.services[1]["command"]
    assert "--timeout=600" in culler and "--cull-every=300" in culler
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["idle-culler"]
    off = Config()
    off.CullerService.enabled = False
    add_managed_services(off)
    assert "services" not in off.JupyterHub
