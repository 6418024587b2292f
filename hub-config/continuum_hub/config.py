"""Helpers called by the layered ``jupyterhub_config.py`` (kept here so tests reach them).

:func:`add_hub_sqlite_wal` puts the hub's own SQLite database in write-ahead-log mode, its
commits without a disk sync each.  JupyterHub opens a SQLite database with SQLite's defaults: a
rollback journal and ``synchronous=FULL``, so every commit creates, syncs and deletes a journal
file, in the hub's event loop.  On the shared test machine such a commit took 35 ms (median;
140 ms at worst), a sign-in makes about ten and a spawn more, and the event loop waits for each.
With ``journal_mode=WAL`` and ``synchronous=NORMAL`` a commit is an append to the log (synced at
checkpoints; measured: under 1 ms): a power loss may lose the last commits, never corrupt the
database, and readers no longer wait for writers.  Other databases (PostgreSQL, the services'
stores, which set their own modes) are left as they are.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
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


#: JupyterHub's default ``db_url``
DEFAULT_DB_URL = "sqlite:///jupyterhub.sqlite"
_installed: set[str] = set()


def hub_sqlite_path(c: Config) -> Path | None:
    """The hub database's file (absolute, from the hub's working folder), or ``None`` when
    ``JupyterHub.db_url`` is not a SQLite file."""
    url = make_url(c.JupyterHub.db_url if "db_url" in c.JupyterHub else DEFAULT_DB_URL)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(os.path.realpath(url.database))


def add_hub_sqlite_wal(c: Config) -> None:
    """Put connections to the hub's SQLite database in WAL mode with ``synchronous=NORMAL``."""
    path = hub_sqlite_path(c)
    if path is None or str(path) in _installed:  # the configuration loaded twice
        return
    _installed.add(str(path))
    event.listen(Engine, "connect", _pragmas_for(path))


def _pragmas_for(path: Path) -> Any:
    def pragmas(connection: Any, _record: Any) -> None:
        if not isinstance(connection, sqlite3.Connection) or database_file(connection) != path:
            return
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return pragmas


def database_file(connection: sqlite3.Connection) -> Path | None:
    """The file of ``connection``'s main database (``None`` in memory)."""
    for _seq, name, file in connection.execute("PRAGMA database_list"):
        if name == "main":
            return Path(os.path.realpath(file)) if file else None
    return None
