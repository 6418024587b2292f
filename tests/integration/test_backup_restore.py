"""``continuum-hub backup`` / ``restore`` on real stores: SQLite files and a real PostgreSQL.

The hub's database (JupyterHub's own ORM) holds a user, the identity table an identity with
its link, the pool a lease, the workflow store a run, the events store an event and the
built-in catalogue source an entry (in the hub's PostgreSQL database as the playbook puts it,
or its SQLite file in the state folder); the state folder a secret (0600).  Backup runs with
every store still open (SQLite's last writes still in the write-ahead logs, as while the hub
runs); a restore over the live data is refused; then everything is wiped (the state folder
removed, the PostgreSQL databases dropped and made again empty) and the restore must bring
every record back, and ``jupyterhub upgrade-db`` accepts the restored hub database.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from jupyterhub import orm
from sqlalchemy.engine import make_url
from traitlets.config import Config

from continuum_federation.postgres import PostgresCluster
from continuum_hub.backup import database_urls, main
from continuum_hub.catalogue.index.store import CatalogueStore
from continuum_hub.catalogue.model import Entry
from continuum_hub.dumps import libpq_command
from continuum_hub.identity.identities import IdentityStore
from continuum_hub.workflows.store import Store
from continuum_hub.workshops.store import EventStore
from continuum_spawners.account_map import LeaseStore
from fixtures.databases import BACKENDS, new_postgres_database
from fixtures.store_records import EVENT_START, a_run, an_event

pytestmark = [pytest.mark.integration, pytest.mark.operations]

HOME = "https://home.example"
SECRET = "fernet-key-of-the-gateway"
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def hub_session(url: str) -> Any:
    return orm.new_session_factory(url)()


def catalogue_records(urls: dict[str, str], state: Path) -> CatalogueStore:
    """The built-in source ``demo``'s records: its ``db_url``, else its default file."""
    default = f"sqlite:///{state / 'catalogue' / 'builtin-demo.sqlite'}"
    return CatalogueStore(urls.get("catalogue-builtin", default), "demo")


def populate(urls: dict[str, str], state: Path) -> list[Any]:
    """One of each record; the open stores (kept open: the hub is running)."""
    session = hub_session(urls["hub"])
    session.add(orm.User(name="alice"))
    session.commit()
    identities = IdentityStore(urls["identities"])
    link = ("voperson_id", "alice-123@home")
    assert identities.resolve(HOME, "sub-a", provider="home", suggestion="alice", link=link)
    leases = LeaseStore(urls["leases"])
    assert leases.lease("alpha", "alice", ["guest01", "guest02"], allocate=True) == "guest01"
    runs = Store(urls["workflows"])
    runs.add_run(a_run())
    events = EventStore(urls["events"])
    events.add(an_event())
    assert events.add_participant("ev0000000001", "alice")
    records = catalogue_records(urls, state)
    entry = Entry(id="", source="demo", identifier="beta/radio/obs.fits", kind="file", title="Obs")
    assert records.upsert([entry]) == 1
    return [session, identities, leases, runs, events, records]


def assert_everything_back(urls: dict[str, str], state: Path) -> None:
    session = hub_session(urls["hub"])
    assert [user.name for user in session.query(orm.User)] == ["alice"]
    session.close()
    identities = IdentityStore(urls["identities"])
    assert identities.lookup(HOME, "sub-a") == "alice"
    assert identities.identities_of("alice") == [("home", HOME, "sub-a")]
    # the link came back too: another provider's identity with the same value gets alice
    again = identities.resolve(
        "https://partner.example", "p-a", provider="partner", suggestion="al",
        link=("voperson_id", "alice-123@home"),
    )  # fmt: skip
    assert (again.username, again.linked) == ("alice", True)
    assert LeaseStore(urls["leases"]).leases("alpha") == {"alice": "guest01"}
    run = Store(urls["workflows"]).run("r-00000000000a")
    assert run is not None and run["owner"] == "alice" and run["parameters"] == {"n": 3}
    event = EventStore(urls["events"]).get("ev0000000001")
    assert event is not None and event.participants == ("alice",)
    assert event.join_code == "join-code-of-the-event" and event.start == EVENT_START
    found = catalogue_records(urls, state).get("beta/radio/obs.fits")
    assert found is not None and found.title == "Obs"
    secret = state / "dask-gateway" / "encrypt_key"
    assert secret.read_text() == SECRET and mode(secret) == 0o600


def upgrade_db(url: str, folder: Path) -> None:
    """``jupyterhub upgrade-db`` on ``url``: the upgrade path after restoring an older backup."""
    empty = folder / "jupyterhub_config.py"
    empty.write_text("")
    upgrade = subprocess.run(
        [str(Path(sys.executable).parent / "jupyterhub"), "upgrade-db", "-f", str(empty),
         f"--JupyterHub.db_url={url}"],
        cwd=folder, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]


@pytest.fixture(params=BACKENDS)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict, Callable]:
    """``(state folder, JSON layer, wipe)`` of a hub on SQLite files or on PostgreSQL."""
    state = tmp_path / "state"
    if request.param == "sqlite":  # every default: files in the state folder
        return state, {"JupyterHub": {"db_url": "sqlite:///jupyterhub.sqlite"}}, lambda: None
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    made = {name: new_postgres_database(cluster, name) for name in ("hub", "ids", "pool", "wf")}
    layer = {
        "JupyterHub": {"db_url": made["hub"]},  # the ledger and the events live here too
        "FederatedAuthenticator": {"identity_db_url": made["ids"]},
        "AccountMapper": {"lease_db_url": made["pool"]},
        "WorkflowService": {"db_url": made["wf"]},
        # as the playbook: the built-in source's records in the hub's database
        "CatalogueService": {"extra_service_config": {"BuiltinSource": {"db_url": made["hub"]}}},
    }

    def wipe() -> None:
        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as admin:
            for url in made.values():
                name = make_url(url).database
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")

    return state, layer, wipe


def test_backup_wipe_restore_brings_every_record_back(
    deployment: tuple[Path, dict, Callable], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    state, layer, wipe = deployment
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)  # the hub's account; the restore runs as root
    (state / "dask-gateway").mkdir(mode=0o700)
    secret = state / "dask-gateway" / "encrypt_key"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    config_file = tmp_path / "continuum_hub_config.json"
    config_file.write_text(json.dumps(layer))
    urls = database_urls(Config(layer), state)
    opened = populate(urls, state)
    folder = tmp_path / "backups" / "today"
    common = ["--config", str(config_file), "--state-dir", str(state)]

    assert main("backup", [str(folder), *common]) == 0, capsys.readouterr().err
    manifest = json.loads((folder / "manifest.json").read_text())
    backed_up = set(manifest["databases"])  # the usage ledger: only where it exists
    assert {"hub", "identities", "leases", "events", "workflows"} <= backed_up
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert mode(folder) == 0o700 and all(mode(p) == 0o600 for p in files), files
    if layer["JupyterHub"]["db_url"].startswith("postgresql"):  # the hub's database once
        dumps = {entry["file"] for entry in manifest["databases"].values()}
        assert len(dumps) == 4 and manifest["databases"]["events"]["file"].endswith("hub.dump")

    # a restore over live data is refused, and changes nothing
    assert main("restore", [str(folder), *common]) == 1
    assert "nothing restored (--force overwrites)" in capsys.readouterr().err
    assert LeaseStore(urls["leases"]).leases("alpha") == {"alice": "guest01"}

    for store in opened:  # the hub and its services stop
        store.close() if hasattr(store, "close") else store.engine.dispose()
    shutil.rmtree(state)
    wipe()
    assert main("restore", [str(folder), *common]) == 0, capsys.readouterr().err
    # once more over the restored data: --force overwrites (pg_restore --clean)
    assert main("restore", [str(folder), *common, "--force"]) == 0, capsys.readouterr().err
    assert_everything_back(urls, state)
    owned = [state, *(p for p in state.glob("*.sqlite"))]  # SQLite: the hub's own file
    assert all(path.stat().st_uid == NOBODY for path in owned), owned

    if layer["JupyterHub"]["db_url"].startswith("postgresql"):  # seconds: on one backend
        upgrade_db(urls["hub"], tmp_path)


def test_a_postgresql_password_never_reaches_the_command_line() -> None:
    url = "postgresql+psycopg://hub:s3:cr\\et@db.example:5433/continuum?sslmode=require"
    with libpq_command("pg_dump", url, "--format=custom") as (argv, environment):
        assert not any("s3:cr" in arg for arg in argv)
        assert "dbname='continuum'" in argv[1] and "sslmode='require'" in argv[1]
        passfile = Path(environment["PGPASSFILE"])
        assert mode(passfile) == 0o600 and mode(passfile.parent) == 0o700
        assert passfile.read_text() == "*:*:*:hub:s3\\:cr\\\\et\n"
        assert "PGPASSWORD" not in environment
    assert not passfile.exists()
