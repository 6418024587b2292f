"""The usage ledger on a real PostgreSQL (Debian's 15), not only SQLite.

A throwaway cluster (``continuum_federation.postgres``) holds the ledger; a second
``JobLedger`` on the same URL is the hub (or a service) after a restart, and the hub's plain
``postgresql://`` URL is turned into psycopg 3's by :func:`ledger_url`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from continuum_federation.postgres import PostgresCluster
from continuum_spawners.ledger import JobLedger, ledger_url, month_start
from fixtures.databases import new_postgres_database
from fixtures.ledger_jobs import accounted, usage_job

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.operations]

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A database of the session's cluster (``fixtures.databases``)."""
    return new_postgres_database(postgres_cluster, "usage")


def test_ledger_upserts_and_survives_a_restart_on_postgresql(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTINUUM_USAGE_DB_URL", raising=False)
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    url = ledger_url(plain)
    assert url.startswith("postgresql+psycopg://")
    ledger = JobLedger(url)
    job = usage_job("12", kind="dask", label="c1", submitted_at=NOW - timedelta(minutes=5))
    ledger.record_submission(job)
    ledger.record_submission(job)  # twice: one row
    done = accounted(job, elapsed_s=240, energy_kwh=0.01, co2e_kg=0.005)
    assert ledger.update([done]) == 1
    assert ledger.update([done]) == 0
    ledger.set_checkpoint("alpha", ok=False, at=NOW, error="sacct did not answer")
    ledger.set_override("alice", {"core_hours": 2})
    again = JobLedger(url)  # the hub started again
    (stored,) = again.jobs(user="alice")
    assert stored == dataclasses.replace(done, updated_at=stored.updated_at)
    assert stored.ended_at == NOW - timedelta(minutes=1) and stored.ended_at.tzinfo is UTC
    totals = again.totals(vo="vo.hep.example", since=month_start(NOW - timedelta(minutes=5)))
    assert (totals.jobs, totals.core_hours, totals.gpu_hours) == (1, 480 / 3600, 240 / 3600)
    assert again.unfinished("alpha") == [] and again.unfinished_sites() == []
    assert again.checkpoint("alpha").last_error == "sacct did not answer"  # type: ignore[union-attr]
    assert again.override("alice") == {"core_hours": 2.0}
