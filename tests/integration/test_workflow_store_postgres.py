"""The workflow service's database on a real PostgreSQL (Debian's 15), not only SQLite.

A throwaway cluster (``continuum_federation.postgres``: ``initdb`` as the ``postgres`` account in
a temporary folder, listening on 127.0.0.1 and a private socket folder) holds the store; a second
``Store`` on the same URL is the service after a restart.
"""

from __future__ import annotations

import pytest

from continuum_federation.postgres import PostgresCluster
from continuum_hub.workflows.store import Store, public_run
from fixtures.databases import new_postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.workflows]


@pytest.fixture(scope="module")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A database of the session's cluster (``fixtures.databases``)."""
    return new_postgres_database(postgres_cluster, "workflows")


def test_runs_survive_a_restart_on_postgresql(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.add_run(
        {
            "id": "r-00000000000a",
            "owner": "alice",
            "name": "analysis.ipynb",
            "state": "queued",
            "job_id": "12",
            "account": "alice",
            "created": "2026-01-01T00:00:00Z",
            "spec": {"parameters": {"label": "x", "n": [1, 2]}, "sweep": {"grid": {"e": [1, 2]}}},
            "members": [{"index": 0, "parameters": {"e": 1}}, {"index": 1, "parameters": {"e": 2}}],
        }
    )
    store.add_attempt("r-00000000000a", {"site": "alpha", "job_id": "12", "state": "queued"})
    store.update_member("r-00000000000a", 1, state="running", cell=1, cells=3)
    again = Store(postgres_url)  # the service started again
    (run,) = again.runs(states=("queued", "running"))
    assert run["parameters"] == {"label": "x", "n": [1, 2]} and run["sweep"]["grid"] == {
        "e": [1, 2]
    }
    assert [m["state"] for m in run["members"]] == ["pending", "running"]
    assert run["attempts"][0]["job_id"] == "12"
    assert "account" not in public_run(run)
