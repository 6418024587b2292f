"""``SiteMonitor``: one batched status query per site per interval, shared by all its callers.

batchspawner runs one ``squeue`` per server per poll: with hundreds of servers that is hundreds
of scheduler calls every poll interval, a load site admins notice.  Here every spawner of a site
(and, in its own process, the Dask Gateway) asks the site's one monitor
(:func:`continuum_spawners.schedulers.monitor_for`); the monitor answers from its last query
while that is fresh enough and otherwise runs *one* status command for all the jobs it watches.
Callers that arrive while a query is in flight wait for that query instead of starting another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..metrics import STATUS_CALLS, STATUS_DURATION
from .base import JobState, JobStatus, SchedulerAdapter
from .transport import Transport

log = logging.getLogger(__name__)


class SiteMonitor:
    """Job status of one site, from batched queries.

    Parameters
    ----------
    name
        The site's name (for messages).
    adapter
        Builds the status command and parses its output.
    transport
        Runs it (as the hub's own account: status needs no user identity).
    clock
        Monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        name: str,
        adapter: SchedulerAdapter,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.transport = transport
        self.clock = clock
        self.watched: set[str] = set()
        self.statuses: dict[str, JobStatus] = {}
        self.fetched_at = float("-inf")
        self.queries = 0  # status commands run so far (exposed for metrics and benchmarks)
        self._inflight: asyncio.Future[None] | None = None

    def watch(self, job_id: str) -> None:
        """Include ``job_id`` in the batched queries from now on."""
        self.watched.add(job_id)

    def forget(self, job_id: str) -> None:
        """Stop following ``job_id`` (its server stopped)."""
        self.watched.discard(job_id)
        self.statuses.pop(job_id, None)

    async def status(self, job_id: str, max_age: float) -> JobStatus:
        """Status of ``job_id``, from a query no older than ``max_age`` seconds.

        A job not seen by the last query (just submitted) triggers a new one.
        """
        self.watch(job_id)
        fresh = self.clock() - self.fetched_at < max_age
        if not (fresh and job_id in self.statuses):
            await self.refresh()
            if job_id not in self.statuses:  # the query in flight began before we watched it
                await self.refresh()
        return self.statuses.get(job_id) or JobStatus(job_id, JobState.UNKNOWN)

    async def statuses_for(self, job_ids: list[str], max_age: float) -> dict[str, JobStatus]:
        """Status of each of ``job_ids`` and of their job arrays' tasks (``"<id>_<i>"``), from
        one query no older than ``max_age`` seconds (batch runs ask for all of a site's jobs at
        once)."""
        for job_id in job_ids:
            self.watch(job_id)
        fresh = self.clock() - self.fetched_at < max_age
        if not (fresh and all(job_id in self.statuses for job_id in job_ids)):
            await self.refresh()
            if not all(job_id in self.statuses for job_id in job_ids):
                await self.refresh()  # the query in flight began before we watched them
        wanted = set(job_ids)
        return {
            key: status
            for key, status in self.statuses.items()
            if key in wanted or key.partition("_")[0] in wanted
        } | {
            job_id: JobStatus(job_id, JobState.UNKNOWN)
            for job_id in job_ids
            if job_id not in self.statuses
        }

    async def refresh(self) -> None:
        """Query all watched jobs in one command (or wait for the query in flight)."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            return
        self._inflight = asyncio.get_running_loop().create_future()
        try:
            await self._query()
        finally:
            self._inflight.set_result(None)
            self._inflight = None

    async def _query(self) -> None:
        ids = sorted(self.watched)
        if not ids:
            return
        self.queries += 1
        started = time.monotonic()  # the real clock: ``clock`` may be a test's
        try:
            result = await self.transport.run(self.adapter.status_argv(ids))
            statuses = self.adapter.parse_status(
                result.returncode, result.stdout, result.stderr, ids
            )
        except Exception as exc:  # a dead scheduler must not take the hub down
            log.warning("Status query on site %s failed: %s", self.name, exc)
            statuses = {i: JobStatus(i, JobState.UNKNOWN, reason=str(exc)[:200]) for i in ids}
        STATUS_DURATION.labels(site=self.name).observe(time.monotonic() - started)
        unknown = [s for s in statuses.values() if s.state is JobState.UNKNOWN]
        # every job unknown: the scheduler did not answer (the "site unreachable" alert)
        failed = bool(unknown) and len(unknown) == len(statuses)
        STATUS_CALLS.labels(site=self.name, outcome="error" if failed else "ok").inc()
        if unknown:
            log.warning(
                "Scheduler of site %s is not answering (%s); keeping %d servers",
                self.name,
                unknown[0].reason or "no reason",
                len(unknown),
            )
        self.statuses = dict(statuses)
        self.fetched_at = self.clock()
