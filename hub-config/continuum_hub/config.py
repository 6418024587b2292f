"""Helpers called by the layered ``jupyterhub_config.py`` (kept here so tests reach them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import JSONFileConfigLoader

CONFIG_ENV = "CONTINUUM_HUB_CONFIG"


def layer_files(folder: Path) -> list[Path]:
    """The ``*.py`` layers of ``folder`` in name order."""
    return sorted(p for p in Path(folder).glob("*.py") if p.is_file())


def load_json_layer(c: Config, environ: Mapping[str, str] | None = None) -> None:
    """Merge the JSON config file named by ``CONTINUUM_HUB_CONFIG`` into ``c``, if set."""
    environ = os.environ if environ is None else environ
    path = environ.get(CONFIG_ENV)
    if not path:
        return
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"{CONFIG_ENV}={path}: no such file")
    loader = JSONFileConfigLoader(file.name, path=str(file.parent))
    c.merge(loader.load_config())


def check_site_registry(c: Config) -> None:
    """Load the configured site registry once at start-up: a mistake stops the hub with a clear
    message instead of failing users' spawns later."""
    from continuum_spawners.account_map import check_account_policies
    from continuum_spawners.budgets import count_refusals_from_zero
    from continuum_spawners.sites import RegistryError, SiteRegistry

    section = c.SiteSpawner
    path = section.registry_path if "registry_path" in section else None
    if not path:
        return
    try:
        registry = SiteRegistry.from_file(path)
    except RegistryError as exc:
        raise SystemExit(f"Invalid site registry (SiteSpawner.registry_path): {exc}") from None
    # the account map files the sites name: a broken one stops the hub here, not a spawn
    check_account_policies(c, registry)
    count_refusals_from_zero(registry)
