"""The job ledger on SQLite: idempotent upserts, totals, checkpoints, overrides, URLs, VOs."""

from __future__ import annotations

import dataclasses
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuum_spawners.ledger import (
    JobLedger,
    UsageJob,
    ledger_for,
    ledger_url,
    month_start,
    next_month_start,
    vo_for,
)
from continuum_spawners.sites import Partition, Site
from fixtures.ledger_jobs import SUBMITTED as NOW
from fixtures.ledger_jobs import accounted, usage_job


def job(job_id: str = "1", **values: object) -> UsageJob:
    return usage_job(job_id, **values)


@pytest.fixture
def ledger(tmp_path: Path) -> JobLedger:
    return JobLedger(f"sqlite:///{tmp_path / 'state' / 'usage.sqlite'}")


def test_sqlite_file_is_private_and_in_wal_mode(ledger: JobLedger, tmp_path: Path) -> None:
    path = tmp_path / "state" / "usage.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with ledger.engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_submission_is_an_idempotent_upsert(ledger: JobLedger) -> None:
    ledger.record_submission(job())
    ledger.record_submission(job())
    (pending,) = ledger.unfinished("alpha")
    assert (pending.source, pending.state, pending.final) == ("pending", "PENDING", False)
    assert pending.submitted_at == NOW and pending.submitted_at.tzinfo is UTC
    assert ledger.unfinished("beta") == [] and ledger.unfinished_sites() == ["alpha"]
    # collected values survive a repeated submission record
    ledger.update([dataclasses.replace(pending, state="RUNNING", cpu_time_s=60, source="sacct")])
    ledger.record_submission(job(label="again"))
    (again,) = ledger.unfinished("alpha")
    assert (again.label, again.state, again.cpu_time_s) == ("again", "RUNNING", 60)


def test_update_counts_changed_rows_and_never_unfinalizes(ledger: JobLedger) -> None:
    ledger.record_submission(job("1"))
    ledger.record_submission(job("2"))
    done = accounted(job("1"), elapsed_s=3600)
    assert ledger.update([done, job("2")]) == 1
    assert ledger.update([done]) == 0  # the same answer twice changes nothing
    late = dataclasses.replace(done, state="RUNNING", final=False, cpu_time_s=10)
    assert ledger.update([late]) == 0
    assert [j.job_id for j in ledger.unfinished("alpha")] == ["2"]
    (stored,) = ledger.jobs(kind="server", site="alpha", since=NOW, until=NOW + timedelta(1))[1:]
    assert stored.job_id == "1" and stored.core_hours == 2.0 and stored.gpu_hours == 1.0
    assert stored.ended_at == NOW + timedelta(hours=1)


def test_committed_hours_cover_the_request_until_final() -> None:
    running = job(elapsed_s=600, alloc_gpus=1, cpu_time_s=1200, co2e_kg=0.01, source="sacct")
    assert running.committed_core_hours == 2.0  # 2 cores × 1 h asked
    assert running.committed_gpu_hours == 1.0
    assert running.committed_co2e_kg == pytest.approx(0.06)  # 10 min so far → 60 min
    final = dataclasses.replace(running, final=True)
    assert final.committed_core_hours == pytest.approx(1200 / 3600)
    assert final.committed_co2e_kg == 0.01


def test_jobs_filters_order_and_totals(ledger: JobLedger) -> None:
    ledger.record_submission(job("1", submitted_at=NOW - timedelta(days=40)))
    ledger.record_submission(job("2", kind="dask", label="c1"))
    ledger.record_submission(job("3", user="bob", vo=None, submitted_at=NOW + timedelta(1)))
    ledger.update(
        [
            job(
                "2",
                kind="dask",
                label="c1",
                cpu_time_s=3600,
                energy_kwh=0.5,
                co2e_kg=0.2,
                source="sacct",
                final=True,
            )
        ]
    )
    since = month_start(NOW)
    assert [j.job_id for j in ledger.jobs(since=since)] == ["3", "2"]
    assert [j.job_id for j in ledger.jobs(user="alice")] == ["2", "1"]
    assert [j.job_id for j in ledger.jobs(vo="vo.hep.example", since=since)] == ["2"]
    assert ledger.jobs(limit=1)[0].job_id == "3"
    totals = ledger.totals(user="alice", since=since, until=next_month_start(NOW))
    assert (totals.jobs, totals.core_hours, totals.energy_kwh) == (1, 1.0, 0.5)
    assert totals.estimated is False
    assert ledger.totals(since=since).estimated is True  # bob's job is not collected yet
    assert job("2").as_json()["submitted_at"] == "2026-12-05T10:00:00+00:00"


def test_checkpoints_and_overrides(ledger: JobLedger) -> None:
    assert ledger.checkpoint("alpha") is None
    ledger.set_checkpoint("alpha", ok=True, at=NOW)
    ledger.set_checkpoint("alpha", ok=False, at=NOW + timedelta(minutes=5), error="sacct down")
    point = ledger.checkpoint("alpha")
    assert point is not None
    assert (point.last_success_at, point.last_error) == (NOW, "sacct down")
    assert point.last_attempt_at == NOW + timedelta(minutes=5)
    ledger.set_checkpoint("alpha", ok=True, at=NOW + timedelta(minutes=10))
    assert ledger.checkpoint("alpha").last_error == ""  # type: ignore[union-attr]
    assert ledger.override("alice") is None
    ledger.set_override("alice", {"core_hours": 5})
    ledger.set_override("alice", {"core_hours": 7, "co2e_kg": 1})
    assert ledger.override("alice") == {"core_hours": 7.0, "co2e_kg": 1.0}
    ledger.set_override("alice", None)
    assert ledger.override("alice") is None


def test_bad_kind_or_source_is_refused() -> None:
    with pytest.raises(ValueError):
        job(kind="vm")
    with pytest.raises(ValueError):
        job(source="guess")


def test_ledger_for_is_one_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.sqlite'}"
    assert ledger_for(url) is ledger_for(url)


@pytest.mark.parametrize(
    ("hub_url", "expected"),
    [
        ("sqlite:////srv/hub/jupyterhub.sqlite", "sqlite:////srv/hub/continuum-usage.sqlite"),
        ("postgresql://hub:pw@db/hub", "postgresql+psycopg://hub:pw@db/hub"),
        ("postgresql+psycopg://hub@db/hub", "postgresql+psycopg://hub@db/hub"),
    ],
    ids=["sqlite", "postgresql", "psycopg"],
)
def test_ledger_url(monkeypatch: pytest.MonkeyPatch, hub_url: str, expected: str) -> None:
    monkeypatch.delenv("CONTINUUM_USAGE_DB_URL", raising=False)
    assert ledger_url(hub_url) == expected
    monkeypatch.setenv("CONTINUUM_USAGE_DB_URL", "sqlite:////elsewhere.sqlite")
    assert ledger_url(hub_url) == "sqlite:////elsewhere.sqlite"


def test_vo_for_and_months() -> None:
    partition = Partition(
        name="p", max_cores=1, max_memory_gb=1, max_walltime_minutes=60, default_walltime_minutes=60
    )
    site = Site("alpha", "slurm", (partition,), groups=frozenset({"vo.b", "vo.a"}))
    assert vo_for(site, ["vo.b", "other"]) == "vo.b"
    assert vo_for(site, ["vo.a", "vo.b"]) == "vo.a"
    assert vo_for(site, ["other"]) is None
    assert vo_for(Site("open", "slurm", (partition,)), ["vo.a"]) is None
    assert month_start(NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month_start(NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month_start(datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) == datetime(
        2026, 2, 1, tzinfo=UTC
    )
