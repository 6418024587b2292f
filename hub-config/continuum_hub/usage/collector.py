"""``UsageCollector``: what the hub's jobs used, from the sites' accounting, into the ledger.

Every ``interval`` seconds, for each site with unfinished jobs in the ledger
(:mod:`continuum_spawners.ledger`), the collector runs *one* accounting command for all of them
(Slurm: ``sacct``) through the site-access path — the site's adapter builds and parses it, the
site's monitor transport runs it as the hub's own account — and writes what it says back.  A job
stays unfinished until the accounting reports its final values, so nothing is lost while a site
does not answer; the next successful call catches up (a job is final once two answers agree on
its final values: slurmdbd may still revise the first).  Every write is an idempotent upsert and
the usage counters grow once per job, by its final values, when the ledger first holds them,
so neither a restart of the collector nor a repeated answer counts anything twice.

A site whose accounting fails (disabled, ``slurmdbd`` down): its checkpoint records the error
(the usage views say "usage delayed"), and the jobs its monitor sees running get *estimated*
values from the hub's own times (first seen running → last seen) and the requested cores and
GPUs, replaced by ``sacct``'s values once it answers again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from continuum_spawners import ledger as ledgers
from continuum_spawners.ledger import JobLedger, UsageJob
from continuum_spawners.metrics import (
    USAGE_CO2E_GRAMS,
    USAGE_COLLECTIONS,
    USAGE_CORE_HOURS,
    USAGE_ENERGY_KWH,
    USAGE_GPU_HOURS,
)
from continuum_spawners.schedulers import adapter_for, monitor_for
from continuum_spawners.schedulers.base import AccountingRecord, JobState, JobStatus
from continuum_spawners.sites import Site, SiteRegistry

#: how far before a site's oldest unfinished job the accounting query starts (clock skew, and
#: a job eligible later than it was submitted)
LOOKBACK = timedelta(days=1)


class AccountingFailed(RuntimeError):
    """The site's accounting command failed (its message, never a secret)."""


def _impact(site: Site, job: UsageJob) -> UsageJob:
    """``job`` with energy and CO2e from the site's power model (:mod:`.impact`)."""
    from continuum_spawners import impact  # the owner's module may load data files: lazily

    result = impact.job_impact(impact.model_for(site), job)
    return dataclasses.replace(
        job,
        energy_kwh=result.energy_kwh,
        co2e_kg=result.co2e_kg,
        energy_measured=result.measured,
    )


def from_record(job: UsageJob, record: AccountingRecord) -> UsageJob:
    """``job`` with what the accounting reported (``source="sacct"``)."""
    return dataclasses.replace(
        job,
        state=record.state,
        started_at=record.start,
        ended_at=record.end,
        elapsed_s=record.elapsed_s,
        alloc_cores=record.alloc_cores,
        alloc_gpus=record.alloc_gpus,
        alloc_memory_gb=record.alloc_memory_gb,
        cpu_time_s=record.cpu_time_s,
        consumed_energy_j=record.consumed_energy_j,
        source="sacct",
        final=record.final,
    )


def settled(old: UsageJob, new: UsageJob) -> UsageJob:
    """``new``, final only once the accounting said the same final values twice in a row.

    slurmdbd may revise a job's record after first reporting it ended (records sent late by
    slurmctld after an outage, the end of a job's completion); the ledger keeps asking until
    two answers agree, so the final values, and the counters grown by them, are sacct's last.
    """
    same = old.source == "sacct" and all(
        getattr(old, name) == getattr(new, name)
        for name in ("state", "ended_at", "elapsed_s", "cpu_time_s", "consumed_energy_j")
    )
    return new if not new.final or same else dataclasses.replace(new, final=False)


def estimated(job: UsageJob, status: JobStatus | None, now: datetime) -> UsageJob | None:
    """``job`` estimated from the hub's own view (``None``: nothing new to say).

    Running: from when it was first seen running (the ledger's ``started_at`` of an earlier
    estimate) to ``now``; gone: up to the last time it was seen.  Never final: the accounting's
    values replace these once it answers.
    """
    if job.source == "sacct" or status is None:
        return None
    if status.state is JobState.RUNNING:
        started = job.started_at or now
        return dataclasses.replace(
            job,
            state=status.raw_state or "RUNNING",
            started_at=started,
            ended_at=None,
            elapsed_s=int((now - started).total_seconds()),
            alloc_cores=job.req_cores,
            alloc_gpus=job.req_gpus,
            alloc_memory_gb=job.req_memory_gb,
            cpu_time_s=int((now - started).total_seconds()) * job.req_cores,
            source="estimated",
        )
    if status.state is JobState.GONE and job.started_at is not None and job.ended_at is None:
        # ended since the last look: it ran at most until now
        return dataclasses.replace(job, state="ENDED", ended_at=now)
    return None


class UsageCollector(LoggingConfigurable):
    """Collects the hub's jobs' usage from the sites' accounting (see the module docstring)."""

    interval = Float(
        300.0,
        min=1.0,
        config=True,
        help="""Seconds between two collections: each runs one accounting command (Slurm:
        ``sacct``) per site with unfinished jobs, whatever the number of jobs.""",
    )
    command_timeout = Float(
        60.0,
        min=1.0,
        config=True,
        help="Seconds after which an accounting command (over SSH: the connection included) "
        "is killed and the collection of that site counted as failed.",
    )
    give_up_days = Float(
        7.0,
        min=0.0,
        config=True,
        help="""Days after its submission at which a job the site's accounting (answering) has
        never listed is closed with the values the ledger has (its estimate, if any), so it is
        not asked about for ever (e.g. submitted before the site had accounting).""",
    )
    db_url = Unicode(
        config=True,
        help="""SQLAlchemy URL of the usage ledger.  Default: ``$CONTINUUM_USAGE_DB_URL``, which
        ``add_usage`` sets from ``JupyterHub.db_url`` (``continuum-usage.sqlite`` beside the
        hub's SQLite file, or the hub's own PostgreSQL database).""",
    )
    registry_path = Unicode(
        config=True,
        help="Site registry (YAML) naming the sites to ask.  Default: "
        "``SiteSpawner.registry_path``, set by ``add_usage``.",
    )

    @default("db_url")
    def _db_url_default(self) -> str:
        return os.environ.get(ledgers.ENV_URL, "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None

    @property
    def ledger(self) -> JobLedger:
        return ledgers.ledger_for(self.db_url)

    def registry(self) -> SiteRegistry:
        """The registry as it is now (read every collection: sites come and go)."""
        return SiteRegistry.from_file(Path(self.registry_path))

    async def collect(self) -> dict[str, str]:
        """One collection over every site with unfinished jobs; site → ok, error or skipped."""
        outcomes: dict[str, str] = {}
        registry = self.registry()
        for name in self.ledger.unfinished_sites():
            site = registry.get(name)
            if site is None:
                self.log.warning("Usage of site %s not collected: not in the registry", name)
                outcomes[name] = "skipped"
                continue
            outcomes[name] = await self.collect_site(site)
        return outcomes

    async def collect_site(self, site: Site) -> str:
        """One accounting command for all unfinished jobs of ``site``, written to the ledger."""
        jobs = self.ledger.unfinished(site.name)
        if not jobs:
            return "skipped"
        now = self.now()
        try:
            records = await self.accounting(site, jobs)
        except Exception as exc:  # a dead site must not stop the others
            error = str(exc)[:300] or type(exc).__name__
            previous = self.ledger.checkpoint(site.name)
            # once per outage at warning level: a site without accounting fails every interval
            first = previous is None or previous.last_error != error
            self.log.log(
                logging.WARNING if first else logging.DEBUG,
                "Usage of site %s delayed: %s",
                site.name,
                error,
            )
            USAGE_COLLECTIONS.labels(site=site.name, outcome="error").inc()
            self.ledger.set_checkpoint(site.name, ok=False, at=now, error=error)
            await self.estimate(site, jobs, now)
            return "error"
        USAGE_COLLECTIONS.labels(site=site.name, outcome="ok").inc()
        by_id = {record.job_id: record for record in records}
        updated = [
            _impact(site, settled(job, from_record(job, by_id[job.job_id])))
            for job in jobs
            if job.job_id in by_id
        ]
        unknown = [
            dataclasses.replace(job, final=True)
            for job in jobs
            if job.job_id not in by_id and now - job.submitted_at > timedelta(self.give_up_days)
        ]
        if unknown:
            self.log.warning(
                "Accounting of %s never listed %d job(s) (%s…): closed as they are",
                site.name,
                len(unknown),
                unknown[0].job_id,
            )
        self.write(jobs, updated + unknown)
        self.ledger.set_checkpoint(site.name, ok=True, at=now)
        return "ok"

    async def accounting(self, site: Site, jobs: Sequence[UsageJob]) -> list[AccountingRecord]:
        """What the site's accounting says of ``jobs``: one command, as the hub's account."""
        adapter = adapter_for(site)
        since = min(job.submitted_at for job in jobs) - LOOKBACK
        argv = adapter.accounting_argv([job.job_id for job in jobs], since)
        result = await monitor_for(site, self.command_timeout).transport.run(argv)
        if result.returncode != 0:
            message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
            raise AccountingFailed(f"{argv[0]} did not answer ({message[:200]})")
        return adapter.parse_accounting(result.stdout)

    async def estimate(self, site: Site, jobs: Sequence[UsageJob], now: datetime) -> None:
        """Estimated values for the jobs the site's monitor sees (one batched status query)."""
        monitor = monitor_for(site, self.command_timeout)
        ids = [job.job_id for job in jobs]
        watched = set(monitor.watched)
        try:
            statuses = await monitor.statuses_for(ids, self.interval)
        except Exception as exc:  # the status query failed too: nothing to estimate from
            self.log.warning("No estimate of the usage on %s: %s", site.name, exc)
            return
        finally:
            # the spawner's polls keep asking for their own jobs; ours are asked for here only
            for job_id in set(ids) - watched:
                monitor.forget(job_id)
        changed = [estimated(job, statuses.get(job.job_id), now) for job in jobs]
        self.write(jobs, [_impact(site, job) for job in changed if job is not None])

    def write(self, before: Sequence[UsageJob], after: Sequence[UsageJob]) -> int:
        """Write ``after``; the usage counters grow by the final values of the jobs that
        ``after`` finishes.  Only final ``sacct`` values count: an estimate, or sacct's own
        running total (extrapolated to now until slurmdbd hears of the end), may exceed what
        the job finally used, and a counter cannot go back down."""
        finished = {(job.site, job.job_id) for job in before if job.final}
        for job in after:
            if job.source != "sacct" or not job.final or (job.site, job.job_id) in finished:
                continue
            labels = {"site": job.site, "kind": job.kind}
            USAGE_CORE_HOURS.labels(**labels).inc(job.core_hours)
            USAGE_GPU_HOURS.labels(**labels).inc(job.gpu_hours)
            USAGE_ENERGY_KWH.labels(**labels).inc(job.energy_kwh)
            USAGE_CO2E_GRAMS.labels(**labels).inc(job.co2e_kg * 1000)
        return self.ledger.update(after)

    async def run(self) -> None:
        """Collect every ``interval`` seconds until cancelled (a failed round is logged)."""
        while True:
            try:
                await self.collect()
            except Exception:
                self.log.exception("Usage collection failed")
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None] | None:
        """Start :meth:`run` in the running event loop (the hub's); ``None`` outside one."""
        if not (self.db_url and self.registry_path):
            self.log.warning("Usage collector not started: no ledger URL or registry")
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the configuration loaded outside the hub (a config check)
            return None
        self._task = loop.create_task(self.run())
        self.log.info("Collecting usage every %g s into the ledger", self.interval)
        return self._task

    def stop(self) -> None:
        """Cancel the running task."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
