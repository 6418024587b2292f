"""The hub's SQLite database in WAL mode without a sync per commit (add_hub_sqlite_wal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyterhub import orm
from sqlalchemy import create_engine, text
from traitlets.config import Config

from continuum_hub.config import add_hub_sqlite_wal, hub_sqlite_path


def modes(url: str, hub: bool = True) -> tuple[str, int]:
    """(journal_mode, synchronous) of a connection that JupyterHub's own session factory (or,
    with ``hub=False``, a plain engine) opens."""
    if hub:
        connection = orm.new_session_factory(url, reset=False)().connection()
    else:
        connection = create_engine(url).connect()
    try:
        journal = connection.execute(text("PRAGMA journal_mode")).scalar()
        synchronous = connection.execute(text("PRAGMA synchronous")).scalar()
        return str(journal), int(synchronous)
    finally:
        connection.close()


def test_the_hub_database_gets_wal_and_normal_sync_others_keep_theirs(tmp_path: Path) -> None:
    c = Config()
    c.JupyterHub.db_url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    add_hub_sqlite_wal(c)
    add_hub_sqlite_wal(c)  # the configuration loaded twice: one listener
    assert modes(c.JupyterHub.db_url) == ("wal", 1)  # 1: NORMAL
    # another SQLite file of the same process keeps SQLite's defaults (2: FULL)
    assert modes(f"sqlite:///{tmp_path / 'other.sqlite'}", hub=False) == ("delete", 2)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://hub@db/jupyterhub", None),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
    ],
    ids=["postgresql", "memory", "no-file"],
)
def test_only_a_sqlite_file_is_the_hub_database(url: str, expected: Path | None) -> None:
    c = Config()
    c.JupyterHub.db_url = url
    assert hub_sqlite_path(c) == expected


def test_the_default_url_is_the_file_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert hub_sqlite_path(Config()) == (tmp_path / "jupyterhub.sqlite").resolve()
