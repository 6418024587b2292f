"""The usage collector: one accounting call per site per interval, catch-up, no double count.

The boundary is faked: the site's monitor transport answers ``sacct`` (and ``squeue``) from a
table the test controls; the Slurm adapter that builds and parses the commands is the real one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuum_hub.usage.collector import UsageCollector
from continuum_spawners.ledger import JobLedger, ledger_for
from continuum_spawners.metrics import USAGE_COLLECTIONS, USAGE_CORE_HOURS
from continuum_spawners.schedulers import clear_monitors, monitor_for
from continuum_spawners.schedulers.transport import CommandResult, TransportError
from continuum_spawners.sites import SiteRegistry
from fixtures.ledger_jobs import usage_job

REGISTRY = """
sites:
  - name: alpha
    scheduler: slurm
    access: {groups: [vo.hep.example]}
    partitions:
      - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
  - name: beta
    scheduler: slurm
    partitions:
      - {name: batch, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
"""
NOW = datetime.now(UTC).replace(microsecond=0)


class FakeSite:
    """A site's accounting and queue: ``jobs`` maps a job id to its sacct line's fields."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, object]] = {}
        self.running: set[str] = set()
        self.down: str | None = None
        self.calls: list[list[str]] = []

    def finish(self, job_id: str, elapsed: int, cores: int = 2) -> None:
        start = (NOW - timedelta(seconds=elapsed)).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        end = NOW.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        self.jobs[job_id] = {
            "state": "COMPLETED",
            "start": start,
            "end": end,
            "elapsed": elapsed,
            "cores": cores,
        }

    async def run(self, argv: list[str], **_: object) -> CommandResult:
        self.calls.append(list(argv))
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        if argv[0] == "squeue":
            lines = [f"{i}|RUNNING|None|n1|2026-12-05T00:00:00" for i in ids if i in self.running]
            return CommandResult(0, "".join(f"{line}\n" for line in lines), "")
        if self.down:
            return CommandResult(1, "", self.down)
        out = []
        for i in ids:
            job = self.jobs.get(i)
            if job is None:
                out.append(f"{i}|PENDING|Unknown|Unknown|0|0||0|0|{i}")
                continue
            cores, elapsed = job["cores"], job["elapsed"]
            out.append(
                f"{i}|{job['state']}|{job['start']}|{job['end']}|{elapsed}|{cores}"
                f"|billing={cores},cpu={cores},mem=2G,node=1|{int(elapsed) * int(cores)}|0|{i}"  # type: ignore[call-overload]
            )
        return CommandResult(0, "".join(f"{line}\n" for line in out), "")


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[UsageCollector, FakeSite, JobLedger]]:
    clear_monitors()
    registry_path = tmp_path / "sites.yaml"
    registry_path.write_text(REGISTRY)
    site = FakeSite()
    for entry in SiteRegistry.from_file(registry_path):
        monitor_for(entry).transport = site  # type: ignore[assignment]
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    collector = UsageCollector(db_url=url, registry_path=str(registry_path), interval=5)
    yield collector, site, ledger_for(url)
    clear_monitors()


def submit(ledger: JobLedger, count: int, site: str = "alpha", start: int = 100) -> list[str]:
    ids = [str(start + n) for n in range(count)]
    for job_id in ids:
        submitted = NOW - timedelta(hours=1)
        ledger.record_submission(usage_job(job_id, site=site, req_gpus=0, submitted_at=submitted))
    return ids


def sacct_calls(site: FakeSite) -> int:
    return sum(1 for argv in site.calls if argv[0] == "sacct")


@pytest.mark.parametrize("count", [10, 500])
async def test_one_accounting_call_per_site_per_interval(fake, count: int) -> None:
    collector, site, ledger = fake
    ids = submit(ledger, count)
    submit(ledger, 3, site="beta", start=9000)
    for job_id in ids[: count // 2]:
        site.finish(job_id, elapsed=90)
    assert await collector.collect() == {"alpha": "ok", "beta": "ok"}
    print(f"\n{count} jobs: {sacct_calls(site)} sacct calls per interval (2 sites)")
    assert sacct_calls(site) == 2
    # final once two answers agree (slurmdbd may revise the first)
    assert len(ledger.unfinished("alpha")) == count
    await collector.collect()
    assert sacct_calls(site) == 4
    assert len(ledger.unfinished("alpha")) == count - count // 2
    done = ledger.jobs(site="alpha", limit=count)[-1]
    assert (done.source, done.final, done.cpu_time_s, done.state) == (
        "sacct",
        True,
        180,
        "COMPLETED",
    )
    assert done.core_hours == pytest.approx(180 / 3600)
    assert done.energy_kwh > 0 and done.co2e_kg > 0  # the site's power model
    site.calls.clear()
    await collector.collect()
    assert sacct_calls(site) == 2  # still one per site, with only the unfinished ones asked
    asked = next(a for a in site.calls[0] if a.startswith("--jobs="))
    assert len(asked.split(",")) == count - count // 2


async def test_failed_call_is_delayed_then_caught_up(fake) -> None:
    collector, site, ledger = fake
    (job_id,) = submit(ledger, 1)
    site.running.add(job_id)
    site.down = "sacct: error: Problem talking to the database: Connection refused"
    errors = USAGE_COLLECTIONS.labels(site="alpha", outcome="error")._value.get()
    counted = USAGE_CORE_HOURS.labels(site="alpha", kind="server")._value.get()
    assert await collector.collect() == {"alpha": "error"}
    assert USAGE_COLLECTIONS.labels(site="alpha", outcome="error")._value.get() == errors + 1
    point = ledger.checkpoint("alpha")
    assert point is not None and "Connection refused" in point.last_error
    (job,) = ledger.unfinished("alpha")
    assert (job.source, job.state, job.alloc_cores) == ("estimated", "RUNNING", 2)
    # the job ends while the accounting is still down: it stays unfinished, nothing is lost
    site.running.clear()
    site.finish(job_id, elapsed=600)
    collector.now = lambda: NOW + timedelta(minutes=5)
    await collector.collect()
    assert [j.job_id for j in ledger.unfinished("alpha")] == [job_id]
    # estimates are shown, never counted: a counter cannot go back down to sacct's value
    assert USAGE_CORE_HOURS.labels(site="alpha", kind="server")._value.get() == counted
    site.down = None
    assert await collector.collect() == {"alpha": "ok"}
    assert not ledger.unfinished("alpha")[0].final
    # slurmdbd revises the job's end: the ledger follows until two answers agree
    site.finish(job_id, elapsed=610)
    await collector.collect()
    assert ledger.unfinished("alpha")[0].cpu_time_s == 1220
    await collector.collect()
    (final,) = ledger.jobs(site="alpha")
    assert (final.source, final.final, final.cpu_time_s) == ("sacct", True, 1220)
    assert ledger.checkpoint("alpha").last_error == ""  # type: ignore[union-attr]
    assert ledger.unfinished("alpha") == []
    counter = USAGE_CORE_HOURS.labels(site="alpha", kind="server")._value.get()
    assert counter == pytest.approx(counted + 1220 / 3600)


async def test_no_double_count_after_restart(fake, tmp_path: Path) -> None:
    collector, site, ledger = fake
    ids = submit(ledger, 4)
    for job_id in ids[:2]:
        site.finish(job_id, elapsed=3600)
    counter = USAGE_CORE_HOURS.labels(site="alpha", kind="server")
    before = counter._value.get()
    await collector.collect()
    assert counter._value.get() == before  # nothing final yet
    await collector.collect()
    assert counter._value.get() == pytest.approx(before + 4.0)
    # a new collector (a restarted hub) over the same ledger, and the same answers again
    again = UsageCollector(db_url=ledger.url, registry_path=collector.registry_path)
    await again.collect()
    await again.collect()
    assert counter._value.get() == pytest.approx(before + 4.0)
    assert ledger.totals(user="alice", since=NOW - timedelta(days=1)).core_hours == 4.0
    # an answer repeated for a final job changes no row
    final = [dataclasses.replace(j) for j in ledger.jobs(site="alpha") if j.final]
    assert ledger.update(final) == 0


async def test_transport_failure_and_unknown_site(fake) -> None:
    collector, site, ledger = fake
    submit(ledger, 1)
    submit(ledger, 1, site="gone", start=7)

    async def broken(argv: list[str], **_: object) -> CommandResult:
        raise TransportError("sacct did not answer within 60 s")

    site.run = broken  # type: ignore[method-assign]
    assert await collector.collect() == {"alpha": "error", "gone": "skipped"}
    assert "within 60 s" in ledger.checkpoint("alpha").last_error  # type: ignore[union-attr]


async def test_a_job_the_accounting_never_lists_is_closed_after_a_while(fake) -> None:
    collector, site, ledger = fake
    (job_id,) = submit(ledger, 1)

    async def no_such_job(argv: list[str], **_: object) -> CommandResult:
        site.calls.append(list(argv))
        return CommandResult(0, "", "")

    site.run = no_such_job  # type: ignore[method-assign]
    await collector.collect()
    assert [j.job_id for j in ledger.unfinished("alpha")] == [job_id]
    collector.now = lambda: NOW + timedelta(days=8)
    await collector.collect()
    assert ledger.unfinished("alpha") == []
    (closed,) = ledger.jobs(site="alpha")
    assert (closed.final, closed.source, closed.cpu_time_s) == (True, "pending", 0)
