"""The services' stores on SQLite and on PostgreSQL alike (``fixtures.databases``).

Each store writes through one instance and reads through a second one on the same URL (the
service started again): the workshop events with their participants and time zones, the
workflow runs with members, attempts and credentials, the catalogue's requests, the job ledger,
the Dask Gateway's clusters.
The identity table and the pool leases run their whole unit tests on both
(``test_identity.py``, ``test_account_map.py``, ``test_lease_race.py``).
"""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path

from dask_gateway_server.backends.db_base import DataManager

from continuum_hub.catalogue.store import Store as RequestStore
from continuum_hub.gateway.app import CONFIG_ENV, load_config
from continuum_hub.gateway.database import use_postgresql_types
from continuum_hub.workflows.store import Store as RunStore
from continuum_hub.workshops.store import EventStore
from continuum_spawners.ledger import JobLedger
from fixtures.ledger_jobs import usage_job
from fixtures.store_records import EVENT_START, a_run, an_event


def test_events_with_participants_survive_a_restart(database) -> None:
    url = database("events")
    store = EventStore(url)
    store.add(an_event())
    store.add(an_event("ev0000000002", join_code="other-code"))
    assert store.add_participant("ev0000000001", "bob")
    assert not store.add_participant("ev0000000001", "bob")  # once
    again = EventStore(url)
    event = again.by_code("join-code-of-the-event")
    assert event is not None and event.participants == ("bob",)
    assert event.start == EVENT_START and event.start.tzinfo is not None
    assert [e.id for e in again.events_of("bob", EVENT_START + timedelta(minutes=5))] == [
        "ev0000000001"
    ]
    again.remove("ev0000000002")
    assert [e.id for e in EventStore(url).list()] == ["ev0000000001"]


def test_runs_and_credentials_survive_a_restart(database) -> None:
    url = database("workflows")
    store = RunStore(url)
    store.add_run(a_run())
    number = store.add_attempt("r-00000000000a", {"site": "alpha", "state": "submitting"})
    store.update_attempt("r-00000000000a", number, job_id="17", state="queued")
    store.update_member("r-00000000000a", 0, state="running", cell=1, cells=3)
    store.add_credential(
        {"id": "c-000000000001", "owner": "alice", "run_id": "r-00000000000a",
         "token": "secret-token", "created": "2026-12-01T00:00:00Z", "revoked": False},
    )  # fmt: skip
    again = RunStore(url)
    run = again.run("r-00000000000a")
    assert run is not None and run["parameters"] == {"n": 3}
    assert run["members"][0]["state"] == "running" and run["attempts"][0]["job_id"] == "17"
    assert again.run_counts().get("queued") == 1
    again.update_credential("c-000000000001", revoked=True, token=None)
    (credential,) = RunStore(url).credentials(owner="alice")
    assert credential["revoked"] is True and credential["token"] is None


def test_catalogue_requests_survive_a_restart(database) -> None:
    url = database("catalogue")
    made = RequestStore(url).add(
        "alice", "demo:obs-1", "rucio", "alpha", {"id": "rule-1", "state": "requested"}
    )
    again = RequestStore(url)
    again.update(made["id"], "done", "replicated")
    (request,) = again.owned("alice")
    assert (request["state"], request["message"], request["site"]) == (
        "done",
        "replicated",
        "alpha",
    )


def test_ledger_upserts_on_both(database) -> None:
    url = database("usage")
    JobLedger(url).record_submission(usage_job("7"))
    JobLedger(url).record_submission(usage_job("7"))  # again, from another process: one row
    assert [job.job_id for job in JobLedger(url).jobs(user="alice")] == ["7"]


async def test_gateway_clusters_survive_a_restart(database) -> None:
    """dask-gateway-server's own tables on our URL (``GatewayService.db_url``): a cluster and
    its encrypted token come back in a restarted gateway (its records want an event loop)."""
    url = database("gateway")
    use_postgresql_types(url)  # what the gateway's process does (BINARY → BYTEA)
    key = base64.urlsafe_b64encode(b"k" * 32)
    manager = DataManager(url, encrypt_keys=[key])
    cluster = manager.create_cluster("alice", {}, {})
    worker = manager.create_worker(cluster)
    manager.update_cluster(cluster, stop_time=cluster.start_time + 60_000)  # milliseconds
    again = DataManager(url, encrypt_keys=[key]).get_cluster(cluster.name)
    assert again is not None and (again.username, again.token) == ("alice", cluster.token)
    assert again.stop_time == cluster.start_time + 60_000 and list(again.workers) == [worker.name]


def test_gateway_process_uses_the_configured_database(tmp_path: Path) -> None:
    state = tmp_path / "gw"
    hub_config = {"ContinuumGateway": {"state_dir": str(state)}}
    config = load_config({CONFIG_ENV: json.dumps(hub_config)})
    assert config.SiteSlurmBackend.db_url == f"sqlite:///{state / 'gateway.sqlite'}"
    assert stat.S_IMODE((state / "gateway.sqlite").stat().st_mode) == 0o600
    url = "postgresql+psycopg://gateway@/continuum_gateway?host=/var/run/postgresql"
    hub_config["SiteSlurmBackend"] = {"db_url": url}  # GatewayService.db_url puts it here
    assert load_config({CONFIG_ENV: json.dumps(hub_config)}).SiteSlurmBackend.db_url == url
