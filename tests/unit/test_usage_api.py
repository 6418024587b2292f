"""The usage REST API's pieces: ranges, the report's sums, CSV, delays, override bodies."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuum_hub.usage.api import (
    MAX_DAYS,
    checked_override,
    jobs_csv,
    parse_range,
    usage_report,
)
from continuum_spawners.ledger import JobLedger, UsageJob
from fixtures.ledger_jobs import SUBMITTED as NOW
from fixtures.ledger_jobs import usage_job


def job(job_id: str, **values: object) -> UsageJob:
    """A collected job of alice submitted the day before :data:`NOW`, asking for no GPU."""
    defaults: dict[str, object] = {"submitted_at": NOW - timedelta(days=1), "req_gpus": 0}
    return usage_job(job_id, **(defaults | {"source": "sacct", "final": True} | values))


@pytest.fixture
def ledger(tmp_path: Path) -> JobLedger:
    ledger = JobLedger(f"sqlite:///{tmp_path / 'usage.sqlite'}")
    jobs = [
        job("1", cpu_time_s=3600, energy_kwh=0.1, co2e_kg=0.05),
        job(
            "2",
            kind="dask",
            label="c",
            cpu_time_s=7200,
            elapsed_s=3600,
            alloc_gpus=1,
            energy_kwh=0.2,
            co2e_kg=0.1,
            submitted_at=NOW - timedelta(days=2),
        ),
        job("3", site="beta", kind="batch", label="r-1", cpu_time_s=1800, vo=None),
        job("4", user="bob", cpu_time_s=36000),
        job("5", submitted_at=NOW - timedelta(days=40), cpu_time_s=3600),
    ]
    for entry in jobs:
        ledger.record_submission(entry)
    ledger.update(jobs)
    return ledger


def test_parse_range_defaults_to_this_month() -> None:
    assert parse_range(None, None, NOW) == (datetime(2026, 12, 1, tzinfo=UTC), NOW)
    since, until = parse_range("2026-11-01", "2026-11-02T12:00:00+01:00", NOW)
    assert since == datetime(2026, 11, 1, tzinfo=UTC)
    assert until == datetime(2026, 11, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("1026-01-01", "2026-01-01", f"at most {MAX_DAYS} days"),
        ("2026-12-02", "2026-12-01", "after"),
        ("yesterday", None, "ISO 8601"),
        (None, "2026-13-01", "ISO 8601"),
    ],
    ids=["centuries", "reversed", "words", "no-such-month"],
)
def test_parse_range_refuses(start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_range(start, end, NOW)


def test_report_sums_by_day_site_kind_vo(ledger: JobLedger) -> None:
    since, until = parse_range(None, None, NOW)
    report = usage_report(ledger, "alice", since, until, {})
    assert [j["job_id"] for j in report["jobs"]] == ["3", "1", "2"]
    totals = report["totals"]
    assert (totals["jobs"], totals["core_hours"], totals["gpu_hours"]) == (3, 3.5, 1.0)
    assert totals["energy_kwh"] == pytest.approx(0.3) and totals["estimated"] is False
    assert [(d["day"], d["core_hours"]) for d in report["by_day"]] == [
        ("2026-12-03", 2.0),
        ("2026-12-04", 1.5),
    ]
    assert {s["site"]: s["jobs"] for s in report["by_site"]} == {"alpha": 2, "beta": 1}
    assert {k["kind"]: k["core_hours"] for k in report["by_kind"]} == {
        "batch": 0.5,
        "dask": 2.0,
        "server": 1.0,
    }
    assert {v["vo"]: v["jobs"] for v in report["by_vo"]} == {"": 1, "vo.hep.example": 2}
    assert (report["user"], report["from"]) == ("alice", "2026-12-01T00:00:00+00:00")
    assert report["budgets"] == [] and report["delayed"] == []
    everyone = usage_report(ledger, None, since, until, {"kind": "server"})
    assert everyone["user"] == "*" and [j["user"] for j in everyone["jobs"]] == ["bob", "alice"]


def test_report_says_which_sites_are_delayed(ledger: JobLedger) -> None:
    ledger.set_checkpoint("beta", ok=True, at=NOW - timedelta(hours=2))
    ledger.set_checkpoint("beta", ok=False, at=NOW, error="sacct did not answer (refused)")
    report = usage_report(ledger, "alice", *parse_range(None, None, NOW), {})
    assert report["delayed"] == [
        {
            "site": "beta",
            "since": (NOW - timedelta(hours=2)).isoformat(),
            "message": "usage delayed: sacct did not answer (refused)",
        }
    ]


def test_csv_has_every_field(ledger: JobLedger) -> None:
    rows = list(csv.DictReader(io.StringIO(jobs_csv(ledger.jobs(user="bob")))))
    assert len(rows) == 1
    assert rows[0]["job_id"] == "4" and float(rows[0]["core_hours"]) == 10.0
    assert rows[0]["submitted_at"] == (NOW - timedelta(days=1)).isoformat()
    assert jobs_csv([]) == ""


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "1",
        {"core_hours": -1},
        {"core_hours": 1e12},
        {"core_hours": True},
        {"core_hours": "5"},
        {"cpu": 1},
        {"co2e_kg": float("nan")},
    ],
    ids=["empty", "list", "string", "negative", "absurd", "bool", "text", "unknown", "nan"],
)
def test_override_bodies_refused(body: object) -> None:
    with pytest.raises(ValueError):
        checked_override(body)


def test_override_bodies_accepted() -> None:
    assert checked_override(None) is None
    assert checked_override({"core_hours": 5, "co2e_kg": 0.5}) == {
        "core_hours": 5.0,
        "co2e_kg": 0.5,
    }
